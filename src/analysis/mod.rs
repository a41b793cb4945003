//! Analysis: walk, parse, measure and find smells. Never fails on broken code: syntax
//! errors, unreadable or oversized files become [`Diagnostic`]s and the run goes on.

pub(crate) mod clones;
mod discovery;
pub(crate) mod metrics;
mod parse;
pub(crate) mod smells;
pub(crate) mod walk;

pub(crate) use discovery::Collector;
use discovery::{Discovery, MAX_MACRO_BODIES};
pub(crate) use parse::Parsers;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Tree};

use crate::cache::{self, ResultCache};
use crate::config::Config;
use crate::finding::{Finding, Kind, Location, stable_id};
use crate::lang::{LANGUAGES, Language};
use clones::CloneUnits;
use metrics::Metrics;

/// A file-level problem that did not stop the run: a syntax error, a skipped file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What clone detection compares (empty unless `scan` looks for duplicates).
    #[serde(skip)]
    pub(crate) clones: CloneUnits,
    #[serde(skip)]
    pub(crate) is_test: bool,
}

/// Everything one run found below a root.
#[derive(Debug, Default)]
pub struct Analysis {
    pub files: Vec<FileReport>,
    /// Duplicate-code findings (clone classes span files), ordered by value.
    pub duplicates: Vec<Finding>,
    pub diagnostics: Vec<Diagnostic>,
    /// Why the result cache could not be written, if it could not (the run itself is fine).
    pub cache_warning: Option<String>,
}

impl Analysis {
    /// Duplicates first (by value), then each file's smells.
    pub(crate) fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.duplicates
            .iter()
            .chain(self.files.iter().flat_map(|file| file.findings.iter()))
    }
}

/// A candidate file after reading it and looking it up in the result cache.
enum Input {
    Skipped(Diagnostic),
    /// Unchanged since a cached run: (content hash, results).
    Cached(String, cache::Hit),
    /// To analyse: (content hash if there is a cache, text).
    Fresh(Option<String>, String),
}

/// Analyses every supported file below `root`, in parallel. `with_smells` runs the smell
/// queries too (`scan`); `metrics` does without them. With a `cache`, files whose content
/// is unchanged since the cached run are not parsed again, and this run's results are
/// stored for the next.
pub(crate) fn analyze(
    root: &Path,
    config: &Config,
    with_smells: bool,
    cache: Option<ResultCache>,
) -> Analysis {
    // What the configuration switched off is not computed: no queries for a language none
    // of whose query rules is selected, no clone units when no duplicate rule is.
    let with_queries: Vec<bool> = LANGUAGES
        .iter()
        .map(|language| {
            with_smells
                && smells::declared_rule_ids(language)
                    .iter()
                    .any(|id| config.rule_enabled(id))
        })
        .collect();
    let with_clones = with_smells
        && config.duplicates.enabled
        && clones::RULES
            .iter()
            .any(|rule| config.rule_enabled(rule.id));
    // Compiling a language's smell queries takes 40-90 ms of CPU (tree-sitter checks every
    // pattern against the grammar's parse table), so a worker starts on it as soon as the
    // language is known to have files to analyse: during the walk when nothing is cached
    // (the walk leaves the workers idle), else at its first file that misses the cache (an
    // unchanged tree compiles nothing). Files measured before it is done keep their trees
    // and get their smells in a second pass, so nobody waits.
    let compiling: Vec<AtomicBool> = LANGUAGES.iter().map(|_| AtomicBool::new(false)).collect();
    let start_compiling = |language: &'static Language| {
        if with_queries[language.index()]
            && !compiling[language.index()].swap(true, Ordering::Relaxed)
        {
            rayon::spawn(move || {
                let _ = smells::queries(language);
            });
        }
    };
    let eager = cache.as_ref().is_none_or(ResultCache::is_empty);
    let (candidates, mut diagnostics) = walk::candidates(root, config, &|language| {
        if eager {
            start_compiling(language);
        }
    });
    let inputs: Vec<Input> = candidates
        .par_iter()
        .map(|candidate| match walk::read(candidate, config) {
            walk::Read::Skipped(message) => {
                Input::Skipped(Diagnostic::new(candidate.relative.clone(), message))
            }
            walk::Read::Text(text) => {
                let Some(cache) = &cache else {
                    start_compiling(candidate.language);
                    return Input::Fresh(None, text);
                };
                let hash = cache::content_hash(text.as_bytes());
                let is_test = candidate
                    .language
                    .syntax
                    .is_test_path(Path::new(&candidate.relative));
                match cache.get(&candidate.relative, &hash, candidate.language.name, is_test) {
                    Some(hit) => Input::Cached(hash, hit),
                    None => {
                        start_compiling(candidate.language);
                        Input::Fresh(Some(hash), text)
                    }
                }
            }
        })
        .collect();
    let outcomes: Vec<Option<Outcome>> = candidates
        .par_iter()
        .zip(inputs.par_iter())
        .map_init(
            Parsers::default,
            |parsers, (candidate, input)| match input {
                Input::Fresh(_, text) => {
                    let source = Source::of(candidate, text, with_clones);
                    let smells = if with_queries[candidate.language.index()] {
                        Smells::IfReady
                    } else {
                        Smells::Skip
                    };
                    Some(analyze_text(parsers, &source, config, smells))
                }
                Input::Skipped(_) | Input::Cached(..) => None,
            },
        )
        .collect();
    let results: Vec<(Option<&str>, Option<FileReport>, Vec<Diagnostic>)> = outcomes
        .into_par_iter()
        .zip(inputs.par_iter())
        .zip(candidates.par_iter())
        .map(|((outcome, input), candidate)| match (outcome, input) {
            (_, Input::Skipped(diagnostic)) => (None, None, vec![diagnostic.clone()]),
            (_, Input::Cached(hash, hit)) => (
                Some(hash.as_str()),
                hit.report.clone(),
                hit.diagnostics.clone(),
            ),
            (outcome, Input::Fresh(hash, text)) => {
                let (report, diagnostics) = match outcome {
                    Some(Outcome::Done(report, diagnostics)) => (report, diagnostics),
                    Some(Outcome::Pending(mut measured)) => {
                        let source = Source::of(candidate, text, with_clones);
                        late_smells(&source, &mut measured);
                        let (report, diagnostics) = finish(&source, config, *measured);
                        (Some(report), diagnostics)
                    }
                    // Every fresh input has an outcome.
                    None => (None, Vec::new()),
                };
                (hash.as_deref(), report, diagnostics)
            }
        })
        .collect();
    let cache_warning = cache.and_then(|cache| {
        cache
            .store(results.iter().zip(&candidates).filter_map(
                |((hash, report, diagnostics), candidate)| {
                    Some((
                        candidate.relative.as_str(),
                        (*hash)?,
                        report.as_ref(),
                        diagnostics.as_slice(),
                    ))
                },
            ))
            .err()
    });
    let duplicates = if with_clones {
        find_duplicates(&candidates, &results, config)
    } else {
        Vec::new()
    };
    let mut files = Vec::with_capacity(results.len());
    for (_, report, file_diagnostics) in results {
        files.extend(report);
        diagnostics.extend(file_diagnostics);
    }
    Analysis {
        files,
        duplicates,
        diagnostics,
        cache_warning,
    }
}

/// Analyses files given as (relative path, text), smells and duplicates included, as
/// `scan` would if they were the whole project. `suggest` uses it to compare a proposal's
/// files with the originals without writing either to disk.
pub(crate) fn analyze_texts(files: &[(&str, &str)], config: &Config) -> Analysis {
    let mut parsers = Parsers::default();
    let mut reports = Vec::new();
    let mut diagnostics = Vec::new();
    let mut languages = Vec::new();
    for (path, text) in files {
        let Some(language) = Language::for_path(Path::new(path)) else {
            continue;
        };
        let source = Source {
            language,
            relative: path,
            text,
            is_test: language.syntax.is_test_path(Path::new(path)),
            clones: config.duplicates.enabled,
        };
        let (report, file_diagnostics) =
            analyze_source(&mut parsers, &source, config, Smells::Wait);
        diagnostics.extend(file_diagnostics);
        if let Some(report) = report {
            reports.push(report);
            languages.push(language);
        }
    }
    let units: Vec<clones::FileUnits> = reports
        .iter()
        .zip(&languages)
        .map(|(report, language)| clones::FileUnits {
            language: language.index(),
            is_test: report.is_test,
            units: &report.clones,
        })
        .collect();
    let report_files: Vec<clones::report::ReportFile> = reports
        .iter()
        .zip(&languages)
        .map(|(report, language)| clones::report::ReportFile {
            path: &report.path,
            units: &report.clones,
            language,
        })
        .collect();
    let duplicates = if config.duplicates.enabled {
        let classes = clones::detect(&units, &config.duplicates);
        clones::report::findings(&classes, &report_files, config)
    } else {
        Vec::new()
    };
    drop(units);
    drop(report_files);
    Analysis {
        files: reports,
        duplicates,
        diagnostics,
        cache_warning: None,
    }
}

/// Clone classes across every analysed file, as findings ordered by value.
fn find_duplicates(
    candidates: &[walk::Candidate],
    results: &[(Option<&str>, Option<FileReport>, Vec<Diagnostic>)],
    config: &Config,
) -> Vec<Finding> {
    let mut units = Vec::new();
    let mut files = Vec::new();
    for (candidate, (_, report, _)) in candidates.iter().zip(results) {
        let Some(report) = report else {
            continue;
        };
        units.push(clones::FileUnits {
            language: candidate.language.index(),
            is_test: report.is_test,
            units: &report.clones,
        });
        files.push(clones::report::ReportFile {
            path: &candidate.relative,
            units: &report.clones,
            language: candidate.language,
        });
    }
    let classes = clones::detect(&units, &config.duplicates);
    clones::report::findings(&classes, &files, config)
}

/// Parses and measures one file's text; runs its smell queries if they are ready.
fn analyze_text(
    parsers: &mut Parsers,
    source: &Source,
    config: &Config,
    smells: Smells,
) -> Outcome {
    match measure_source(parsers, source, smells) {
        Ok(measured) if measured.smells_pending => Outcome::Pending(Box::new(measured)),
        Ok(measured) => {
            let (report, diagnostics) = finish(source, config, measured);
            Outcome::Done(Some(report), diagnostics)
        }
        Err(diagnostic) => Outcome::Done(None, vec![diagnostic]),
    }
}

/// What becomes of a file in the parallel pass. One per file, moved once: the size of the
/// `Done` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Done(Option<FileReport>, Vec<Diagnostic>),
    /// Measured, with its trees kept until the smell queries are ready.
    Pending(Box<Measured>),
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
    /// Extract the units clone detection compares.
    pub(crate) clones: bool,
}

impl<'a> Source<'a> {
    fn of(candidate: &'a walk::Candidate, text: &'a str, clones: bool) -> Source<'a> {
        Source {
            clones,
            language: candidate.language,
            relative: &candidate.relative,
            text,
            is_test: candidate
                .language
                .syntax
                .is_test_path(Path::new(&candidate.relative)),
        }
    }
}

/// A parsed and measured file.
pub(crate) struct Measured {
    functions: Vec<FunctionReport>,
    units: CloneUnits,
    diagnostics: Vec<Diagnostic>,
    matches: Vec<smells::SmellMatch>,
    /// The smell queries still have to run, over these trees.
    smells_pending: bool,
    trees: Vec<Tree>,
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
    let mut units = CloneUnits::default();
    let mut next_body = 0;
    let mut current = Some((tree, None));
    while let Some((tree, scope)) = current.take() {
        let mut collector = Collector::new(roots);
        discovery.visit(
            language,
            relative,
            tree.root_node(),
            scope,
            bytes,
            &mut collector,
        );
        if source.clones {
            clones::extract::extract(language, &tree, bytes, &discovery.functions, &mut units);
        }
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
        // The visits so far may have found macro bodies; parse the next one that parses.
        while current.is_none() && next_body < discovery.macro_bodies.len().min(MAX_MACRO_BODIES) {
            let body = &discovery.macro_bodies[next_body];
            next_body += 1;
            if let Ok(subtree) = parsers.parse_range(language, text, body.range) {
                current = Some((subtree, body.scope));
            }
        }
    }
    let mut functions = discovery.functions;
    functions.sort_by_key(|report| (report.location.start_byte, report.location.end_byte));
    Ok(Measured {
        functions,
        units,
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
        units,
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
            properties: None,
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
        clones: clones::prune(units, &config.duplicates),
        is_test: source.is_test,
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
