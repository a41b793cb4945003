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

use super::differences;
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
        let plan = plan(finding, &instances, input.analysis, language);
        let mut instances = instances;
        if finding.kind == Kind::Duplicate
            && plan.as_ref().is_none_or(|plan| plan.signature.is_none())
        {
            describe_differences(&mut instances);
        }
        let format_name = match input.format {
            EditFormat::SearchReplace => "format-search-replace.md",
            EditFormat::Functions => "format-functions.md",
        };
        let format = self.render(
            format_name,
            minijinja::context! {
                language,
                files => Serde(&files),
                plan => Serde(&plan),
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
                plan => Serde(&plan),
                max_parameters => input.max_parameters,
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
    /// The project's parameter limit for the finding's language: a helper with more
    /// parameters is a new finding, which check (d) rejects.
    pub(crate) max_parameters: u32,
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

/// How a duplicate is consolidated, spelled out for the model: small models follow a
/// concrete plan (names, where the helper goes, the import each copy needs) far more
/// reliably than a general request.
#[derive(Serialize)]
struct Plan {
    helper: String,
    helper_path: String,
    /// `pub(crate) ` for Rust (the copies live in other modules), empty for Python.
    visibility: String,
    /// The helper's signature, when every copy's call is known.
    signature: Option<String>,
    /// The copies are Python methods: the helper is a module-level function taking `self`.
    method: bool,
    /// ... that read `self.__name` attributes, which a module-level helper cannot spell
    /// (Python mangles them per class).
    mangled: bool,
    /// Where the helper uses a parameter in place of copy 1's code.
    replacements: Vec<PlanReplacement>,
    copies: Vec<PlanCopy>,
    /// The answer with only the helper's body left to write, when every copy's call is
    /// known (one fenced block per file, in the `functions` format).
    skeleton: Option<String>,
}

#[derive(Serialize)]
struct PlanReplacement {
    /// Copy 1's code (`FIFOCache`, `self.__order`).
    from: String,
    parameter: String,
}

#[derive(Serialize)]
struct PlanCopy {
    function: String,
    path: String,
    /// The import line the copy's file needs for the helper, if it is in another file.
    import: Option<String>,
    /// For whole functions whose copies can be bridged by parameters: the statement its
    /// body becomes (`return helper(FIFOCache, maxsize, typed)`).
    call: Option<String>,
}

/// The parameter names of the function whose code starts `code`, and whether it is a
/// Python method (its first parameter is `self` or `cls`, which a module-level helper
/// takes like any other). `None` for a Rust method (a free helper cannot take its
/// `self`) and for `*args`, keyword-only or positional-only parameters.
fn parameter_names(code: &str, language: &str) -> Option<(Vec<String>, bool)> {
    let keyword = if language == "rust" { "fn " } else { "def " };
    let after = &code[code.find(keyword)?..];
    let open = after.find('(')?;
    let mut depth = 0;
    let mut close = None;
    for (index, ch) in after[open..].char_indices() {
        match ch {
            '(' | '[' | '<' | '{' => depth += 1,
            ')' | ']' | '>' | '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + index);
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &after[open + 1..close?];
    let mut names = Vec::new();
    let mut method = false;
    let mut depth = 0;
    let mut current = String::new();
    for ch in inner.chars().chain(std::iter::once(',')) {
        match ch {
            '(' | '[' | '<' | '{' => depth += 1,
            ')' | ']' | '>' | '}' => depth -= 1,
            ',' if depth == 0 => {
                let part = current.trim().to_string();
                current.clear();
                if part.is_empty() {
                    continue;
                }
                let name = part
                    .split([':', '='])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("mut ")
                    .trim();
                if language == "python" && names.is_empty() && matches!(name, "self" | "cls") {
                    method = true;
                } else if name.contains("self") || name.starts_with('*') || name == "/" {
                    return None;
                }
                if !name.chars().all(|c| c.is_alphanumeric() || c == '_') || name.is_empty() {
                    return None;
                }
                names.push(name.to_string());
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    Some((names, method))
}

fn plan(
    finding: &Finding,
    instances: &[Instance],
    analysis: &Analysis,
    language: &str,
) -> Option<Plan> {
    if finding.kind != Kind::Duplicate || instances.is_empty() {
        return None;
    }
    let names: Vec<&str> = instances
        .iter()
        .filter_map(|instance| instance.function.as_deref())
        .map(|name| name.rsplit(['.', ':']).next().unwrap_or(name))
        .collect();
    let words = |name: &str| -> Vec<String> {
        name.split('_')
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let first = names.first().copied().unwrap_or("code");
    let common: Vec<String> = words(first)
        .into_iter()
        .filter(|word| names.iter().all(|name| words(name).contains(word)))
        .collect();
    let existing: BTreeSet<&str> = analysis
        .files
        .iter()
        .flat_map(|file| file.functions.iter().map(|function| function.name.as_str()))
        .collect();
    let mut helper = if common.is_empty() || names.len() < 2 {
        format!("{}_shared", first.trim_start_matches('_'))
    } else {
        format!("compute_{}", common.join("_"))
    };
    while existing.contains(helper.as_str()) {
        helper.push_str("_impl");
    }
    let helper_path = instances[0].path.clone();
    // The call each copy's body becomes, when every copy is a whole function of the same
    // kind with the same number of parameters, and what differs between the copies can be
    // passed in (the helper takes copy 1's parameters plus one per difference).
    let whole = instances.iter().all(|instance| instance.function.is_some());
    let parameters: Option<Vec<(Vec<String>, bool)>> = whole
        .then(|| {
            instances
                .iter()
                .map(|instance| parameter_names(&instance.code, language))
                .collect()
        })
        .flatten()
        .filter(|lists: &Vec<(Vec<String>, bool)>| {
            lists
                .iter()
                .all(|(list, method)| list.len() == lists[0].0.len() && *method == lists[0].1)
        });
    let method = language == "python"
        && instances.iter().all(|instance| {
            parameter_names(&instance.code, language).is_some_and(|(_, method)| method)
        });
    let mangled = method
        && instances
            .iter()
            .any(|instance| reads_private_attribute(&instance.code));
    let bridged = parameters.and_then(|lists| {
        let codes: Vec<&str> = instances.iter().map(|i| i.code.as_str()).collect();
        let substitutions = Language::by_name(language).and_then(|syntax| {
            differences::substitutions(syntax, &codes, &lists[0].0, lists[0].1)
        })?;
        Some((lists, substitutions))
    });
    let calls: Option<Vec<String>> = bridged.as_ref().map(|(lists, substitutions)| {
        lists
            .iter()
            .enumerate()
            .map(|(index, (list, method))| {
                let extra = substitutions.iter().map(|s| s.arguments[index].clone());
                let arguments: Vec<String> = if *method {
                    list[..1]
                        .iter()
                        .cloned()
                        .chain(extra)
                        .chain(list[1..].iter().cloned())
                        .collect()
                } else {
                    extra.chain(list.iter().cloned()).collect()
                };
                let call = format!("{}({})", helper, arguments.join(", "));
                if language == "rust" {
                    call
                } else {
                    format!("return {call}")
                }
            })
            .collect()
    });
    let substitutions = bridged
        .map(|(_, substitutions)| substitutions)
        .unwrap_or_default();
    let helper_signature = calls.as_ref().and_then(|_| {
        let extras: Vec<&str> = substitutions.iter().map(|s| s.parameter.as_str()).collect();
        let name = instances[0].function.as_deref()?;
        let name = name.rsplit(['.', ':']).next().unwrap_or(name);
        helper_signature(&instances[0].code, language, name, &helper, &extras, method)
    });
    let replacements: Vec<PlanReplacement> = substitutions
        .iter()
        .map(|s| PlanReplacement {
            from: s.from.clone(),
            parameter: s.parameter.clone(),
        })
        .collect();
    let copies: Vec<PlanCopy> = instances
        .iter()
        .enumerate()
        .map(|(index, instance)| {
            let function = instance
                .function
                .as_deref()
                .map(|name| name.rsplit(['.', ':']).next().unwrap_or(name).to_string())
                .unwrap_or_else(|| {
                    format!(
                        "the code at lines {}-{}",
                        instance.start_line, instance.end_line
                    )
                });
            let import = (instance.path != helper_path)
                .then(|| import_line(language, &helper_path, &helper))
                .flatten();
            PlanCopy {
                function,
                path: instance.path.clone(),
                import,
                call: calls.as_ref().map(|calls| calls[index].clone()),
            }
        })
        .collect();
    let visibility = if language == "rust" {
        "pub(crate) "
    } else {
        ""
    };
    let skeleton = helper_signature.as_deref().and_then(|signature| {
        skeleton(
            instances,
            &copies,
            signature,
            &replacements,
            &helper_path,
            visibility,
            language,
        )
    });
    Some(Plan {
        helper,
        helper_path,
        visibility: visibility.to_string(),
        signature: helper_signature,
        method,
        mangled,
        replacements,
        copies,
        skeleton,
    })
}

/// The signature lines of the function `code` starts with: through the first line that
/// ends with `:` (Python) or `{` (Rust).
fn signature(code: &str, language: &str) -> Option<String> {
    let end = if language == "rust" { '{' } else { ':' };
    let mut lines = Vec::new();
    for line in code.lines() {
        lines.push(line);
        if line.trim_end().ends_with(end) {
            return Some(lines.join("\n"));
        }
    }
    None
}

/// The signature of the helper: copy 1's (`name`), renamed to `helper`, without its
/// visibility and indentation, with `extras` added first (after `self` for a method).
fn helper_signature(
    code: &str,
    language: &str,
    name: &str,
    helper: &str,
    extras: &[&str],
    method: bool,
) -> Option<String> {
    let first = to_left_margin(&signature(code, language)?);
    let at = first.find(&format!(" {name}("))? + 1;
    let mut out = format!("{}{helper}(", &first[..at]);
    let rest = &first[at + name.len() + 1..];
    let rest = if extras.is_empty() {
        rest.to_string()
    } else if method {
        let receiver = rest.find(['s', 'c'])?;
        let after = receiver + rest[receiver..].find(|c: char| !c.is_alphanumeric())?;
        format!(
            "{}, {}{}",
            &rest[..after],
            extras.join(", "),
            &rest[after..]
        )
    } else if rest.trim_start().starts_with(')') {
        format!("{}{rest}", extras.join(", "))
    } else {
        format!("{}, {rest}", extras.join(", "))
    };
    out.push_str(&rest);
    let out = out
        .trim_start_matches("pub(crate) ")
        .trim_start_matches("pub ")
        .to_string();
    Some(out)
}

/// Code cut out of its class or impl (a signature, a method), moved left by the
/// indentation of its first line.
fn to_left_margin(signature: &str) -> String {
    let indent = signature.len() - signature.trim_start().len();
    signature
        .lines()
        .map(|line| line.get(indent..).unwrap_or(line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn skeleton(
    instances: &[Instance],
    copies: &[PlanCopy],
    helper_signature: &str,
    replacements: &[PlanReplacement],
    helper_path: &str,
    visibility: &str,
    language: &str,
) -> Option<String> {
    let mut files: Vec<&str> = Vec::new();
    for instance in instances {
        if !files.contains(&instance.path.as_str()) {
            files.push(&instance.path);
        }
    }
    let name = copies[0].function.as_str();
    let adapted = if replacements.is_empty() {
        "unchanged".to_string()
    } else {
        let list: Vec<String> = replacements
            .iter()
            .map(|r| format!("`{}` replaced by `{}`", r.from, r.parameter))
            .collect();
        format!("with {}", list.join(", "))
    };
    let mut out = String::new();
    for file in files {
        out.push_str(&format!("{file}\n```{language}\n"));
        for (instance, copy) in instances.iter().zip(copies) {
            if instance.path != file {
                continue;
            }
            if let Some(import) = &copy.import
                && !out.contains(import.as_str())
            {
                out.push_str(&format!("{import}\n\n"));
            }
        }
        if file == helper_path {
            if language == "rust" {
                out.push_str(&format!(
                    "{visibility}{helper_signature}\n    // the body of `{name}`, {adapted}\n}}\n\n"
                ));
            } else {
                out.push_str(&format!(
                    "{helper_signature}\n    # the body of `{name}`, {adapted} (without its docstring)\n\n\n"
                ));
            }
        }
        for (instance, copy) in instances.iter().zip(copies) {
            if instance.path != file {
                continue;
            }
            let signature = to_left_margin(&signature(&instance.code, language)?);
            let call = copy.call.as_ref()?;
            if language == "rust" {
                out.push_str(&format!("{signature}\n    {call}\n}}\n\n"));
            } else {
                out.push_str(&format!("{signature}\n    {call}\n\n\n"));
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push_str("\n```\n\n");
    }
    Some(out.trim_end().to_string())
}

/// How another file of the project imports `name` from the file at `path`.
fn import_line(language: &str, path: &str, name: &str) -> Option<String> {
    if language == "rust" {
        let module = path.strip_prefix("src/")?.strip_suffix(".rs")?;
        let module = module
            .strip_suffix("/mod")
            .unwrap_or(module)
            .trim_end_matches("lib")
            .trim_end_matches("main")
            .trim_end_matches('/')
            .replace('/', "::");
        Some(if module.is_empty() {
            format!("use crate::{name};")
        } else {
            format!("use crate::{module}::{name};")
        })
    } else {
        let stem = path.strip_suffix(".py")?;
        let stem = stem.strip_prefix("src/").unwrap_or(stem);
        let module = stem
            .strip_suffix("/__init__")
            .unwrap_or(stem)
            .replace('/', ".");
        Some(format!("from {module} import {name}"))
    }
}

#[derive(Serialize)]
struct Instance {
    path: String,
    start_line: u32,
    end_line: u32,
    function: Option<String>,
    code: String,
    /// For copies after the first that no plan bridges: the lines in which this copy
    /// differs from copy 1 (`-` copy 1, `+` this copy), when they are few enough to help.
    differences: Option<String>,
}

/// Whether Python `code` reads a private (`self.__name`, not `__dunder__`) attribute.
fn reads_private_attribute(code: &str) -> bool {
    code.match_indices("self.__").any(|(at, found)| {
        let name: String = code[at + found.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        !name.is_empty() && !name.ends_with("__")
    })
}

/// Fills in how each copy differs from copy 1, line by line with indentation ignored (a
/// copy that wraps the shared lines in one more block still shares them), leaving out
/// diffs that would say less than the copies themselves (more than half the lines).
fn describe_differences(instances: &mut [Instance]) {
    let trimmed = |code: &str| -> Vec<String> {
        let mut lines: Vec<String> = code
            .lines()
            .map(|line| line.trim().to_string())
            .filter(|line| !line.is_empty())
            .collect();
        // A Python docstring differs in words, not in what the code does.
        if let Some(quote) = lines
            .get(1)
            .and_then(|line| ["\"\"\"", "'''"].into_iter().find(|q| line.starts_with(q)))
        {
            let closes = |index: usize| {
                let line = &lines[index];
                line.ends_with(quote) && (index > 1 || line.len() >= 2 * quote.len())
            };
            if let Some(end) = (1..lines.len()).find(|&index| closes(index)) {
                lines.drain(1..=end);
            }
        }
        lines
    };
    let Some(first) = instances.first().map(|instance| trimmed(&instance.code)) else {
        return;
    };
    for instance in instances.iter_mut().skip(1) {
        let code = trimmed(&instance.code);
        let old: Vec<&str> = first.iter().map(String::as_str).collect();
        let new: Vec<&str> = code.iter().map(String::as_str).collect();
        let diff = similar::TextDiff::from_slices(&old, &new);
        let mut lines = Vec::new();
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Equal => continue,
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            lines.push(format!("{sign} {}", change.value()));
        }
        let total = first.len() + code.len();
        if !lines.is_empty() && lines.len() * 2 <= total && lines.len() <= 30 {
            instance.differences = Some(lines.join("\n"));
        }
    }
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
            differences: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(code: &str) -> Instance {
        Instance {
            path: "m.py".to_string(),
            start_line: 1,
            end_line: 1,
            function: Some("f".to_string()),
            code: code.to_string(),
            differences: None,
        }
    }

    #[test]
    fn the_helper_signature_takes_the_differences_first_or_after_self() {
        let free = "def fifo_cache(maxsize=128, typed=False):\n    pass";
        assert_eq!(
            helper_signature(
                free,
                "python",
                "fifo_cache",
                "compute_cache",
                &["cache_class"],
                false
            )
            .unwrap(),
            "def compute_cache(cache_class, maxsize=128, typed=False):"
        );
        let method = "    def popitem(self):\n        pass";
        assert_eq!(
            helper_signature(
                method,
                "python",
                "popitem",
                "compute_popitem",
                &["order"],
                true
            )
            .unwrap(),
            "def compute_popitem(self, order):"
        );
        let rust = "    pub fn total(lines: &[Line]) -> i64 {\n        0\n    }";
        assert_eq!(
            helper_signature(rust, "rust", "total", "compute_total", &[], false).unwrap(),
            "fn compute_total(lines: &[Line]) -> i64 {"
        );
    }

    #[test]
    fn near_miss_copies_get_the_lines_they_differ_in_whatever_their_indentation() {
        let fifo = "def popitem(self):\n    try:\n        key = next(iter(self.__order))\n    except StopIteration:\n        raise KeyError(key)\n    else:\n        return key";
        let ttl = "def popitem(self):\n    with self.timer as time:\n        self.expire(time)\n        try:\n            key = next(iter(self.__links))\n        except StopIteration:\n            raise KeyError(key)\n        else:\n            return key";
        let mut instances = vec![instance(fifo), instance(ttl)];
        describe_differences(&mut instances);
        assert_eq!(instances[0].differences, None);
        assert_eq!(
            instances[1].differences.as_deref(),
            Some(
                "+ with self.timer as time:\n+ self.expire(time)\n- key = next(iter(self.__order))\n+ key = next(iter(self.__links))"
            )
        );
        // Copies that share less than half their lines get no diff.
        let other = "def popitem(self):\n    a = 1\n    b = 2\n    c = 3\n    d = 4\n    return a";
        let mut instances = vec![instance(fifo), instance(other)];
        describe_differences(&mut instances);
        assert_eq!(instances[1].differences, None);
    }

    #[test]
    fn private_attributes_are_told_from_dunders() {
        assert!(reads_private_attribute("x = self.__order"));
        assert!(!reads_private_attribute("return self.__missing__(key)"));
        assert!(!reads_private_attribute("return self._order"));
    }
}
