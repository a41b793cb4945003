//! Prompts: the templates in `prompts/` (embedded, overridable from a user directory),
//! filled with a finding, the code of each of its instances and just enough context: the
//! files' imports and the signatures of the project's functions the code calls, within a
//! budget taken from the model's context length.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minijinja::Environment;
use minijinja::value::Serde;
use serde::Serialize;

use super::edit::EditFormat;
use crate::analysis::Analysis;
use crate::finding::{Finding, Kind};
use crate::lang::Language;
use crate::llm::{Message, Role};

/// The embedded templates, by file name.
const TEMPLATES: &[(&str, &str)] = &[
    ("system.md", include_str!("../../prompts/system.md")),
    (
        "consolidate.md",
        include_str!("../../prompts/consolidate.md"),
    ),
    ("complexity.md", include_str!("../../prompts/complexity.md")),
    ("parameters.md", include_str!("../../prompts/parameters.md")),
    ("smell.md", include_str!("../../prompts/smell.md")),
    (
        "format-search-replace.md",
        include_str!("../../prompts/format-search-replace.md"),
    ),
    (
        "format-functions.md",
        include_str!("../../prompts/format-functions.md"),
    ),
    ("retry.md", include_str!("../../prompts/retry.md")),
];

pub(crate) struct Prompts {
    env: Environment<'static>,
    /// Where each overridden template came from, for messages.
    pub(crate) overrides: Vec<PathBuf>,
}

/// The prompt directory: `--prompts`, else `REFACTOR_AI_PROMPTS`, else `prompts/` in the
/// user config directory, if it exists.
pub(crate) fn user_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("REFACTOR_AI_PROMPTS") {
        return Some(PathBuf::from(dir));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    let dir = config.join("refactor-ai").join("prompts");
    dir.is_dir().then_some(dir)
}

impl Prompts {
    /// The embedded templates, each replaced by a file of the same name in `dir`.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Prompts> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .context("cannot configure the prompt templates")?;
        env.set_syntax(syntax);
        let mut overrides = Vec::new();
        for (name, embedded) in TEMPLATES {
            let user = dir.map(|dir| dir.join(name)).filter(|path| path.is_file());
            let source = match &user {
                Some(path) => std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the prompt template {}", path.display())
                })?,
                None => embedded.to_string(),
            };
            env.add_template_owned(name.to_string(), source)
                .with_context(|| match &user {
                    Some(path) => format!("the prompt template {} is not valid", path.display()),
                    None => format!("the embedded prompt template {name} is not valid"),
                })?;
            overrides.extend(user);
        }
        Ok(Prompts { env, overrides })
    }

    fn render(&self, name: &str, context: minijinja::Value) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|error| format!("the prompt template {name} failed: {error:#}"))
    }

    /// The system and user messages that ask for a refactor of `finding`. Fails when the
    /// finding's code alone does not fit `budget_chars`.
    pub(crate) fn task(&self, input: &TaskInput) -> Result<Vec<Message>, String> {
        let finding = input.finding;
        let primary = Path::new(&finding.primary().path);
        let language = Language::for_path(primary)
            .map(|language| language.name)
            .unwrap_or("python");
        let template = template_for(finding);
        let instances = instances(finding, input.sources, input.analysis);
        let code_chars: usize = instances.iter().map(|instance| instance.code.len()).sum();
        if code_chars + 1500 > input.budget_chars {
            return Err(format!(
                "the finding's code ({code_chars} characters) does not fit the model's \
                 context with room for an answer"
            ));
        }
        let files: Vec<String> = finding
            .locations
            .iter()
            .map(|location| location.path.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let context = context(
            finding,
            &files,
            input.sources,
            input.analysis,
            input.budget_chars.saturating_sub(code_chars + 1500),
        );
        let (example_path, example_old, example_new) = example(language);
        let format_name = match input.format {
            EditFormat::SearchReplace => "format-search-replace.md",
            EditFormat::Functions => "format-functions.md",
        };
        let format = self.render(
            format_name,
            minijinja::context! {
                language,
                example_path,
                example_old,
                example_new,
            },
        )?;
        let user = self.render(
            template,
            minijinja::context! {
                language,
                finding => Serde(finding),
                instances => Serde(&instances),
                files => Serde(&files),
                new_file_allowed => input.new_file_allowed,
                context => Serde(&context),
                format,
            },
        )?;
        let system = self.render("system.md", minijinja::context! { language })?;
        Ok(vec![
            Message::new(Role::System, system.trim()),
            Message::new(Role::User, user.trim()),
        ])
    }

    /// The follow-up message after a rejected proposal.
    pub(crate) fn retry(&self, failure: &str, details: &[String]) -> Result<String, String> {
        let details: Vec<&String> = details.iter().take(40).collect();
        let details = details
            .iter()
            .map(|line| line.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        self.render("retry.md", minijinja::context! { failure, details })
            .map(|text| text.trim().to_string())
    }
}

/// What [`Prompts::task`] needs.
pub(crate) struct TaskInput<'a> {
    pub(crate) finding: &'a Finding,
    /// The contents of every file the finding names, as read.
    pub(crate) sources: &'a BTreeMap<String, String>,
    pub(crate) analysis: &'a Analysis,
    pub(crate) format: EditFormat,
    pub(crate) budget_chars: usize,
    pub(crate) new_file_allowed: bool,
}

/// Which template a finding gets.
pub(crate) fn template_for(finding: &Finding) -> &'static str {
    match (finding.kind, finding.rule.as_str()) {
        (Kind::Duplicate, _) => "consolidate.md",
        (_, "cognitive-complexity" | "deep-nesting" | "long-function") => "complexity.md",
        (_, "too-many-parameters") => "parameters.md",
        _ => "smell.md",
    }
}

/// Whether a finding's template lets the answer create a new module.
pub(crate) fn allows_new_file(finding: &Finding) -> bool {
    finding.kind == Kind::Duplicate
        && Language::for_path(Path::new(&finding.primary().path))
            .is_some_and(|language| language.name == "python")
}

fn example(language: &str) -> (&'static str, &'static str, &'static str) {
    if language == "rust" {
        (
            "src/geometry.rs",
            "pub fn area(width: f64, height: f64) -> f64 {\n    width * height\n}",
            "pub fn area(width: f64, height: f64) -> f64 {\n    product(width, height)\n}\n\nfn product(a: f64, b: f64) -> f64 {\n    a * b\n}",
        )
    } else {
        (
            "geometry/shapes.py",
            "def area(width, height):\n    return width * height",
            "def area(width, height):\n    return _product(width, height)\n\n\ndef _product(a, b):\n    return a * b",
        )
    }
}

#[derive(Serialize)]
struct Instance {
    path: String,
    start_line: u32,
    end_line: u32,
    function: Option<String>,
    code: String,
}

/// The code of each location. A location inside a function is widened to the whole
/// function, so that an answer can replace it.
fn instances(
    finding: &Finding,
    sources: &BTreeMap<String, String>,
    analysis: &Analysis,
) -> Vec<Instance> {
    let mut instances: Vec<Instance> = Vec::new();
    for location in &finding.locations {
        let Some(text) = sources.get(&location.path) else {
            continue;
        };
        let enclosing = analysis
            .files
            .iter()
            .find(|file| file.path == location.path)
            .and_then(|file| {
                file.functions
                    .iter()
                    .filter(|function| {
                        function.start_line <= location.start_line
                            && location.end_line <= function.end_line
                    })
                    .min_by_key(|function| function.end_line - function.start_line)
            });
        let (start, end) = enclosing.map_or((location.start_line, location.end_line), |f| {
            (f.start_line, f.end_line)
        });
        if instances
            .iter()
            .any(|i| i.path == location.path && i.start_line == start)
        {
            continue;
        }
        instances.push(Instance {
            path: location.path.clone(),
            start_line: start,
            end_line: end,
            function: enclosing.map(|f| f.qualified_name.clone()),
            code: lines(text, start, end),
        });
    }
    instances
}

/// Lines `start..=end` (1-based) of `text`, without the final newline.
fn lines(text: &str, start: u32, end: u32) -> String {
    text.lines()
        .skip(start.saturating_sub(1) as usize)
        .take((end + 1).saturating_sub(start) as usize)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Serialize)]
struct FileContext {
    path: String,
    imports: String,
    signatures: String,
}

/// Each file's import lines and the signatures of the project's functions the finding's
/// code calls, cut to `budget` characters.
fn context(
    finding: &Finding,
    files: &[String],
    sources: &BTreeMap<String, String>,
    analysis: &Analysis,
    mut budget: usize,
) -> Vec<FileContext> {
    let code: String = finding
        .locations
        .iter()
        .filter_map(|location| {
            let text = sources.get(&location.path)?;
            Some(lines(text, location.start_line, location.end_line))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let words: BTreeSet<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .collect();
    let own: BTreeSet<&str> = finding.function.iter().map(String::as_str).collect();
    let mut contexts = Vec::new();
    for path in files {
        let Some(text) = sources.get(path) else {
            continue;
        };
        let imports: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.starts_with("import ")
                    || line.starts_with("from ")
                    || line.starts_with("use ")
                    || line.starts_with("pub use ")
            })
            .collect();
        let imports = imports.join("\n");
        // Signatures of functions defined in the finding's files that the code calls.
        let mut signatures = Vec::new();
        if let Some(file) = analysis.files.iter().find(|file| &file.path == path) {
            for function in &file.functions {
                let is_instance = finding.locations.iter().any(|location| {
                    &location.path == path
                        && function.start_line <= location.end_line
                        && location.start_line <= function.end_line
                });
                if !words.contains(function.name.as_str())
                    || own.contains(function.qualified_name.as_str())
                    || is_instance
                {
                    continue;
                }
                let code = lines(text, function.start_line, function.start_line);
                let signature = code.trim().trim_end_matches(['{', ':']).trim().to_string();
                if !signature.is_empty() && !signatures.contains(&signature) {
                    signatures.push(signature);
                }
            }
        }
        let signatures = signatures
            .iter()
            .map(|signature| format!("`{signature}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let cost = imports.len() + signatures.len();
        if cost > budget {
            continue;
        }
        budget -= cost;
        contexts.push(FileContext {
            path: path.clone(),
            imports,
            signatures,
        });
    }
    contexts
}
