//! Edits a model proposes, in two formats, and applying them to in-memory copies of files.
//!
//! - [`EditFormat::SearchReplace`]: Aider-style blocks (a file name line, `<<<<<<< SEARCH`,
//!   the old text, `=======`, the new text, `>>>>>>> REPLACE`). The old text is matched
//!   exactly first, then line by line ignoring trailing whitespace and a uniform difference
//!   of indentation (small models often get indentation wrong by a constant).
//! - [`EditFormat::Functions`]: a file name line and a fenced code block holding complete
//!   definitions. Each definition replaces the one of the same name in that file, found
//!   with tree-sitter; new definitions go after the last replaced one; imports are added
//!   to the file's imports if missing. Small models write whole functions more reliably
//!   than exact excerpts of old code.
//!
//! Paths in an answer are untrusted: they are only normalised here; which files may be
//! edited is decided by the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Parser, Tree};

use crate::lang::Language;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EditFormat {
    SearchReplace,
    Functions,
}

/// One edit, as parsed from an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Edit {
    /// Replace `search` with `replace` in `path`; an empty `search` creates the file (or
    /// appends to it).
    Replace {
        path: String,
        search: String,
        replace: String,
    },
    /// Replace or add the definitions in `code` in `path`.
    Definitions { path: String, code: String },
}

impl Edit {
    pub(crate) fn path(&self) -> &str {
        match self {
            Edit::Replace { path, .. } | Edit::Definitions { path, .. } => path,
        }
    }
}

/// Parses an answer in `format`. An answer with no edit at all is an error that says what
/// the format looks like.
pub(crate) fn parse(
    format: EditFormat,
    answer: &str,
    only_file: Option<&str>,
) -> Result<Vec<Edit>, String> {
    let edits = match format {
        EditFormat::SearchReplace => parse_search_replace(answer, only_file)?,
        EditFormat::Functions => parse_definitions(answer, only_file)?,
    };
    if edits.is_empty() {
        return Err(match format {
            EditFormat::SearchReplace => {
                "the answer has no SEARCH/REPLACE block (a file name line, `<<<<<<< SEARCH`, \
                 old code, `=======`, new code, `>>>>>>> REPLACE`)"
            }
            EditFormat::Functions => {
                "the answer has no file name followed by a fenced code block of definitions"
            }
        }
        .to_string());
    }
    Ok(edits)
}

fn is_marker(line: &str, ch: char, word: &str) -> bool {
    let line = line.trim();
    let count = line.chars().take_while(|&c| c == ch).count();
    (5..=9).contains(&count) && line[count..].trim() == word
}

fn is_divider(line: &str) -> bool {
    let line = line.trim();
    (5..=9).contains(&line.len()) && line.chars().all(|c| c == '=')
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

/// A file name from a line before a block: `path/to/file.py`, `**file.py**`, `### file.py`,
/// `File: file.py`, `` `file.py`: ``. None when the line does not look like a path.
fn path_from_line(line: &str) -> Option<String> {
    let mut text = line.trim();
    for prefix in ["//", "#", "*", "`", "-"] {
        text = text.trim_start_matches(prefix).trim_start();
    }
    for prefix in ["File:", "file:", "Path:", "path:", "In ", "in "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.trim_start();
        }
    }
    // Models wrap the name in emphasis, code, quotes or brackets, and end it with `:` or `.`.
    let text = text
        .trim_end_matches([':', '.', ','])
        .trim_matches(['*', '`', '"', '\'', '(', ')', '[', ']', '<', '>'])
        .trim_end_matches([':', '.', ','])
        .trim();
    let looks_like_path = !text.is_empty()
        && !text.contains(char::is_whitespace)
        && text.contains('.')
        && text
            .rsplit('.')
            .next()
            .is_some_and(|ext| !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()));
    looks_like_path.then(|| text.to_string())
}

fn parse_search_replace(answer: &str, only_file: Option<&str>) -> Result<Vec<Edit>, String> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut edits = Vec::new();
    let mut current_path: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        if !is_marker(lines[i], '<', "SEARCH") {
            i += 1;
            continue;
        }
        let block = edits.len() + 1;
        // The file name: the closest line above that names one (skipping fences).
        let named = lines[..i]
            .iter()
            .rev()
            .take(3)
            .filter(|line| !line.trim().is_empty() && !is_fence(line))
            .take(1)
            .find_map(|line| path_from_line(line))
            .or_else(|| {
                // ```python path/file.py
                lines[..i]
                    .last()
                    .filter(|line| is_fence(line))
                    .and_then(|line| line.split_whitespace().nth(1).and_then(path_from_line))
            });
        if let Some(path) = named {
            current_path = Some(path);
        }
        let path = current_path
            .clone()
            .or_else(|| only_file.map(str::to_string))
            .ok_or_else(|| format!("SEARCH/REPLACE block {block} does not say which file it edits (put the file's path on the line before `<<<<<<< SEARCH`)"))?;
        let mut search = Vec::new();
        i += 1;
        while i < lines.len() && !is_divider(lines[i]) {
            if is_marker(lines[i], '>', "REPLACE") || is_marker(lines[i], '<', "SEARCH") {
                return Err(format!(
                    "SEARCH/REPLACE block {block} ({path}) has no `=======` line"
                ));
            }
            search.push(lines[i]);
            i += 1;
        }
        if i == lines.len() {
            return Err(format!(
                "SEARCH/REPLACE block {block} ({path}) has no `=======` line"
            ));
        }
        let mut replace = Vec::new();
        i += 1;
        while i < lines.len() && !is_marker(lines[i], '>', "REPLACE") {
            if is_marker(lines[i], '<', "SEARCH") {
                break;
            }
            replace.push(lines[i]);
            i += 1;
        }
        if i == lines.len() || !is_marker(lines[i], '>', "REPLACE") {
            return Err(format!(
                "SEARCH/REPLACE block {block} ({path}) is not closed by `>>>>>>> REPLACE`"
            ));
        }
        i += 1;
        edits.push(Edit::Replace {
            path,
            search: join_lines(&search),
            replace: join_lines(&replace),
        });
    }
    Ok(edits)
}

fn join_lines(lines: &[&str]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn parse_definitions(answer: &str, only_file: Option<&str>) -> Result<Vec<Edit>, String> {
    let default = || only_file.map(str::to_string);
    let lines: Vec<&str> = answer.lines().collect();
    let mut edits = Vec::new();
    let mut i = 0;
    // The path a line outside the blocks named last.
    let mut named: Option<String> = None;
    while i < lines.len() {
        if !is_fence(lines[i]) {
            if let Some(path) = source_path(lines[i]) {
                named = Some(path);
            }
            i += 1;
            continue;
        }
        let fence_info = lines[i].trim_start().trim_start_matches('`').trim();
        let mut path = fence_info
            .split_whitespace()
            .find_map(source_path)
            .or_else(|| named.take());
        let start = i + 1;
        let mut end = start;
        // The block ends at the next fence, except a fence with a language right after a
        // block holding only a path (```python / path / ```python / code / ```).
        while end < lines.len() {
            if is_fence(lines[end]) {
                let only_paths = lines[start..end]
                    .iter()
                    .all(|line| line.trim().is_empty() || source_path(line).is_some());
                let has_info = !lines[end].trim().trim_start_matches('`').is_empty();
                if !(only_paths && has_info) {
                    break;
                }
            }
            end += 1;
        }
        i = end + 1;
        // Paths may also be lines inside the block (`# src/a.py`, `// src/lib.rs`): each
        // starts a new file's code.
        let mut code: Vec<&str> = Vec::new();
        for line in &lines[start..end.min(lines.len())] {
            if is_fence(line) {
                continue;
            }
            if let Some(inner) = source_path(line) {
                push_definitions(&mut edits, path.take().or(default()), &code)?;
                code.clear();
                path = Some(inner);
                continue;
            }
            code.push(line);
        }
        push_definitions(&mut edits, path.or(default()), &code)?;
    }
    Ok(edits)
}

fn push_definitions(
    edits: &mut Vec<Edit>,
    path: Option<String>,
    code: &[&str],
) -> Result<(), String> {
    let code = join_lines(code);
    if code.trim().is_empty() {
        return Ok(());
    }
    match path {
        Some(path) => {
            edits.push(Edit::Definitions { path, code });
            Ok(())
        }
        None => Err(format!(
            "a code block does not say which file it belongs to (its first line: `{}`); put \
             the file's path on the line before the ```",
            code.lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("")
                .trim()
        )),
    }
}

/// A line that is only the path of a source file, possibly in a comment or Markdown
/// decoration: `src/a.py`, `# src/a.py`, `// src/lib.rs`, `**src/a.py**`.
fn source_path(line: &str) -> Option<String> {
    let trimmed = line.trim();
    let bare = trimmed
        .strip_prefix("//")
        .or_else(|| trimmed.strip_prefix("# "))
        .unwrap_or(trimmed);
    let path = path_from_line(bare)?;
    let extension = path.rsplit('.').next()?;
    crate::lang::LANGUAGES
        .iter()
        .any(|language| language.extensions.contains(&extension))
        .then_some(path)
}

/// The normalised form of a path from an answer, relative to the project root with `/`
/// separators, or None if it is absolute or leaves the root.
pub(crate) fn normalize_path(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    if path.starts_with('/') || path.contains(':') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Files before and after a proposal: path -> (original content if the file exists, new
/// content).
pub(crate) type Workspace = BTreeMap<String, (Option<String>, String)>;

/// Applies `edits` in order to the files in `workspace` (loaded by the caller with every
/// file an edit names; a missing file is one with no original). Fails with a message
/// naming the edit that does not apply.
///
/// `hints` (per path, byte ranges of the code the request was about) tell same-named
/// definitions apart when the answer does not say which class or impl it means.
pub(crate) fn apply(
    edits: &[Edit],
    workspace: &mut Workspace,
    hints: &BTreeMap<String, Vec<std::ops::Range<usize>>>,
) -> Result<(), String> {
    for (number, edit) in edits.iter().enumerate() {
        let path = edit.path().to_string();
        let (original, current) = workspace
            .get_mut(&path)
            .ok_or_else(|| format!("edit {} names {path}, which was not loaded", number + 1))?;
        let exists = original.is_some() || !current.is_empty();
        let result = match edit {
            Edit::Replace {
                search, replace, ..
            } => {
                if search.trim().is_empty() {
                    // A new file, or text added at the end of one.
                    if exists && !current.is_empty() && !current.ends_with('\n') {
                        current.push('\n');
                    }
                    current.push_str(replace);
                    Ok(())
                } else {
                    replace_text(current, search, replace)
                }
            }
            Edit::Definitions { code, .. } => {
                if !exists {
                    current.push_str(code);
                    Ok(())
                } else {
                    match Language::for_path(std::path::Path::new(&path)) {
                        Some(language) => replace_definitions(
                            language,
                            current,
                            code,
                            hints.get(&path).map_or(&[][..], Vec::as_slice),
                        ),
                        None => Err("refactor-ai cannot locate definitions in this kind of file"
                            .to_string()),
                    }
                }
            }
        };
        result.map_err(|error| format!("edit {} ({path}): {error}", number + 1))?;
    }
    Ok(())
}

/// Replaces the one place `search` matches in `text`.
fn replace_text(text: &mut String, search: &str, replace: &str) -> Result<(), String> {
    let matches: Vec<usize> = text.match_indices(search).map(|(at, _)| at).collect();
    match matches.len() {
        1 => {
            text.replace_range(matches[0]..matches[0] + search.len(), replace);
            return Ok(());
        }
        0 => {}
        n => {
            return Err(format!(
                "the SEARCH text matches {n} places; include more lines to make it unique"
            ));
        }
    }
    // Line by line, ignoring trailing whitespace, blank lines around the block and a
    // uniform indentation difference.
    let search_lines = trim_blank_ends(search.lines().collect());
    if search_lines.is_empty() {
        return Err("the SEARCH text is blank".to_string());
    }
    let text_lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut found = Vec::new();
    for start in 0..text_lines.len() {
        if start + search_lines.len() > text_lines.len() {
            break;
        }
        let window = &text_lines[start..start + search_lines.len()];
        if let Some(shift) = indentation_shift(window, &search_lines) {
            found.push((start, shift));
        }
    }
    let (start, shift) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            let first = search_lines[0].trim();
            return Err(format!(
                "the SEARCH text is not in the file (its first line: `{first}`); copy the old \
                 lines exactly"
            ));
        }
        many => {
            return Err(format!(
                "the SEARCH text matches {} places; include more lines to make it unique",
                many.len()
            ));
        }
    };
    let mut replacement = String::new();
    for line in replace.lines() {
        if line.trim().is_empty() {
            replacement.push('\n');
            continue;
        }
        match &shift {
            Shift::Add(prefix) => replacement.push_str(prefix),
            Shift::Remove(count) => {
                let removable = line.len() - line.trim_start().len();
                let line = &line[(*count).min(removable)..];
                replacement.push_str(line);
                replacement.push('\n');
                continue;
            }
        }
        replacement.push_str(line);
        replacement.push('\n');
    }
    let begin: usize = text_lines[..start].iter().map(|line| line.len()).sum();
    let end: usize = begin
        + text_lines[start..start + search_lines.len()]
            .iter()
            .map(|line| line.len())
            .sum::<usize>();
    let ends_with_newline = text[..end].ends_with('\n');
    if !ends_with_newline && replacement.ends_with('\n') {
        replacement.pop();
    }
    text.replace_range(begin..end, &replacement);
    Ok(())
}

#[derive(Clone, Debug)]
enum Shift {
    /// The file's lines have this extra prefix.
    Add(String),
    /// The file's lines have this many fewer leading whitespace characters.
    Remove(usize),
}

fn trim_blank_ends(mut lines: Vec<&str>) -> Vec<&str> {
    while lines.first().is_some_and(|line| line.trim().is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// How the file's `window` differs from `search` in indentation, if it differs only by one
/// uniform amount (and trailing whitespace).
fn indentation_shift(window: &[&str], search: &[&str]) -> Option<Shift> {
    let mut shift: Option<Shift> = None;
    for (have, want) in window.iter().zip(search) {
        let have = have.trim_end();
        let want = want.trim_end();
        if have.trim().is_empty() && want.trim().is_empty() {
            continue;
        }
        if have.trim_start() != want.trim_start() {
            return None;
        }
        let this = if let Some(prefix) = have.strip_suffix(want) {
            Shift::Add(prefix.to_string())
        } else if let Some(prefix) = want.strip_suffix(have) {
            if !prefix.chars().all(char::is_whitespace) {
                return None;
            }
            Shift::Remove(prefix.len())
        } else {
            return None;
        };
        match (&shift, &this) {
            (None, _) => shift = Some(this),
            (Some(Shift::Add(a)), Shift::Add(b)) if a == b => {}
            (Some(Shift::Remove(a)), Shift::Remove(b)) if a == b => {}
            (Some(Shift::Add(a)), Shift::Remove(0)) if a.is_empty() => {}
            (Some(Shift::Remove(0)), Shift::Add(b)) if b.is_empty() => shift = Some(this),
            _ => return None,
        }
    }
    shift
}

/// The definitions a language's code is made of, for [`EditFormat::Functions`].
struct Grammar {
    functions: &'static [&'static str],
    /// Wrappers whose `definition` child is the function (Python decorators).
    decorated: &'static str,
    imports: &'static [&'static str],
    /// Items whose body holds functions (classes, impl blocks, traits, modules).
    containers: &'static [&'static str],
    /// Siblings that belong to the definition after them (attributes, doc comments).
    leading: &'static [&'static str],
}

fn grammar(language: &Language) -> Grammar {
    if language.name == "rust" {
        Grammar {
            functions: &["function_item", "function_signature_item"],
            decorated: "",
            imports: &["use_declaration", "extern_crate_declaration"],
            containers: &["impl_item", "trait_item", "mod_item"],
            leading: &["attribute_item", "line_comment", "block_comment"],
        }
    } else {
        Grammar {
            functions: &["function_definition"],
            decorated: "decorated_definition",
            imports: &[
                "import_statement",
                "import_from_statement",
                "future_import_statement",
            ],
            containers: &["class_definition"],
            leading: &["comment"],
        }
    }
}

fn parse_tree(language: &Language, text: &str) -> Result<Tree, String> {
    let mut parser = Parser::new();
    parser
        .set_language(&(language.grammar)())
        .map_err(|error| format!("cannot load the {} grammar: {error}", language.name))?;
    parser
        .parse(text, None)
        .ok_or_else(|| "the code could not be parsed".to_string())
}

/// A definition found in a tree: its name, the container it is in (class or impl), the
/// byte range from the start of its first line (leading attributes and comments
/// included) and whether it has such leading lines.
#[derive(Clone, Debug)]
struct Definition {
    name: String,
    container: Option<String>,
    start: usize,
    end: usize,
    /// Where the definition itself starts (after its leading attributes and comments).
    own_start: usize,
    kind: DefinitionKind,
    /// Python functions: the byte range of the docstring's lines, or else where the first
    /// statement's line starts (None: no body).
    docstring: Option<std::ops::Range<usize>>,
    body_start: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefinitionKind {
    Function,
    Import,
    /// A class, impl, struct, constant...: inserted as a whole when new.
    Other,
}

fn name_of(node: Node, text: &str) -> Option<String> {
    let named = node
        .child_by_field_name("name")
        .or_else(|| node.child_by_field_name("type"))?;
    Some(text[named.byte_range()].to_string())
}

/// A Python function's docstring: its first statement, if that is a string, as the range
/// of its whole lines.
fn docstring_of(function: Node, text: &str) -> Option<std::ops::Range<usize>> {
    let first = function.child_by_field_name("body")?.named_child(0)?;
    let is_docstring = first.kind() == "expression_statement"
        && first
            .named_child(0)
            .is_some_and(|child| child.kind() == "string");
    if !is_docstring {
        return None;
    }
    let end = text[first.end_byte()..]
        .find('\n')
        .map_or(text.len(), |n| first.end_byte() + n + 1);
    Some(line_start(text, first.start_byte())..end)
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |newline| newline + 1)
}

/// The definitions at the top level of `root` and one level inside containers.
fn definitions(grammar: &Grammar, root: Node, text: &str) -> Vec<Definition> {
    let mut found = Vec::new();
    collect(grammar, root, text, None, &mut found);
    found
}

fn collect(
    grammar: &Grammar,
    parent: Node,
    text: &str,
    container: Option<&str>,
    found: &mut Vec<Definition>,
) {
    let mut cursor = parent.walk();
    let children: Vec<Node> = parent.named_children(&mut cursor).collect();
    let mut leading_start: Option<usize> = None;
    for node in children {
        let kind = node.kind();
        if grammar.leading.contains(&kind) {
            // Only comments and attributes directly above (no blank line) lead.
            leading_start.get_or_insert(node.start_byte());
            continue;
        }
        let definition_node = if kind == grammar.decorated {
            node.child_by_field_name("definition")
        } else {
            Some(node)
        };
        let leading = leading_start.take();
        let Some(definition_node) = definition_node else {
            continue;
        };
        let start = line_start(text, leading.unwrap_or(node.start_byte()));
        let own_start = line_start(text, node.start_byte());
        let def_kind = definition_node.kind();
        if grammar.functions.contains(&def_kind) {
            if let Some(name) = name_of(definition_node, text) {
                found.push(Definition {
                    name,
                    container: container.map(str::to_string),
                    start,
                    end: node.end_byte(),
                    own_start,
                    kind: DefinitionKind::Function,
                    docstring: docstring_of(definition_node, text),
                    body_start: definition_node
                        .child_by_field_name("body")
                        .and_then(|body| body.named_child(0))
                        .map(|first| line_start(text, first.start_byte())),
                });
            }
        } else if grammar.imports.contains(&def_kind) {
            found.push(Definition {
                name: text[node.byte_range()].trim().to_string(),
                container: container.map(str::to_string),
                start,
                end: node.end_byte(),
                own_start,
                kind: DefinitionKind::Import,
                docstring: None,
                body_start: None,
            });
        } else if grammar.containers.contains(&def_kind) && container.is_none() {
            let name = name_of(definition_node, text).unwrap_or_default();
            found.push(Definition {
                name: name.clone(),
                container: None,
                start,
                end: node.end_byte(),
                own_start,
                kind: DefinitionKind::Other,
                docstring: None,
                body_start: None,
            });
            if let Some(body) = definition_node.child_by_field_name("body") {
                collect(grammar, body, text, Some(&name), found);
            }
        } else if container.is_none() && node.is_named() && !node.is_extra() {
            found.push(Definition {
                name: name_of(definition_node, text).unwrap_or_default(),
                container: None,
                start,
                end: node.end_byte(),
                own_start,
                kind: DefinitionKind::Other,
                docstring: None,
                body_start: None,
            });
        }
    }
}

/// Top-level definitions of code that does not parse, found by their first lines: a line
/// at column 0 that starts with `def`/`class`/`fn`/`impl`... begins one (with the comments,
/// decorators and attributes right above it), an import line is one.
fn top_level_chunks(code: &str) -> Vec<Definition> {
    let mut starts: Vec<(usize, DefinitionKind, String)> = Vec::new();
    let mut leading: Option<usize> = None;
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if line.starts_with([' ', '\t']) || line.trim().is_empty() {
            if line.trim().is_empty() {
                leading = None;
            }
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty())
            .collect();
        let first = words.first().copied().unwrap_or("");
        if line.starts_with('@')
            || line.starts_with("#[")
            || line.starts_with('#')
            || line.starts_with("//")
        {
            leading.get_or_insert(at);
            continue;
        }
        let keyword = words.iter().position(|word| {
            matches!(
                *word,
                "def" | "fn" | "class" | "struct" | "enum" | "impl" | "trait"
            )
        });
        let start = leading.take().unwrap_or(at);
        if matches!(first, "import" | "from" | "use") {
            starts.push((start, DefinitionKind::Import, line.trim().to_string()));
        } else if let Some(index) = keyword {
            let kind = if matches!(words[index], "def" | "fn") {
                DefinitionKind::Function
            } else {
                DefinitionKind::Other
            };
            let name = words.get(index + 1).copied().unwrap_or("").to_string();
            starts.push((start, kind, name));
        }
    }
    let mut units = Vec::new();
    for (index, (start, kind, name)) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(code.len(), |next| next.0);
        let text = code[*start..end].trim_end();
        units.push(Definition {
            name: name.clone(),
            container: None,
            start: *start,
            end: start + text.len(),
            own_start: *start,
            kind: *kind,
            docstring: None,
            body_start: None,
        });
    }
    units
}

/// The indentation of the line `at` is on.
fn indentation_at(text: &str, at: usize) -> &str {
    let start = line_start(text, at);
    let line = &text[start..];
    let width = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..width]
}

/// `code` with its common indentation replaced by `indent` (blank lines left empty).
fn reindent(code: &str, indent: &str) -> String {
    let common = code
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in code.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(&line[common.min(line.len())..]);
            out.push('\n');
        }
    }
    out
}

/// Replaces the definitions in `code` in `text` (by name and container), adds new ones
/// after the last replaced one, and adds missing imports after the file's imports.
fn replace_definitions(
    language: &Language,
    text: &mut String,
    code: &str,
    hints: &[std::ops::Range<usize>],
) -> Result<(), String> {
    let grammar = grammar(language);
    // A block with syntax errors is placed as well as tree-sitter's recovery allows: the
    // syntax check then says what is wrong, which is what a retry needs to hear.
    let code_tree = parse_tree(language, code)?;
    let units = if code_tree.root_node().has_error() {
        top_level_chunks(code)
    } else {
        definitions(&grammar, code_tree.root_node(), code)
    };
    if units.is_empty() {
        return Err("the code block has no definition refactor-ai can place".to_string());
    }
    // Containers in the block are only markers for their methods, unless they are new.
    let python = language.name == "python";
    let mut replaced_any = false;
    // Where the last replaced definition of each container ends (None: top level).
    let mut anchors: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let mut pending_new: Vec<(Option<String>, String)> = Vec::new();
    let mut imports = Vec::new();
    // Containers in the block that the file does not have: added whole, methods included.
    let existing = definitions(&grammar, parse_tree(language, text)?.root_node(), text);
    let new_containers: Vec<&str> = units
        .iter()
        .filter(|unit| unit.kind == DefinitionKind::Other && !unit.name.is_empty())
        .filter(|unit| {
            !existing
                .iter()
                .any(|t| t.kind == DefinitionKind::Other && t.name == unit.name)
        })
        .map(|unit| unit.name.as_str())
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // Which of the file's same-named functions the request was about, by their rank among
    // the functions of that name (ranks survive replacements; byte offsets do not).
    let mut hinted_ranks: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for unit in &units {
        if unit.kind != DefinitionKind::Function || hinted_ranks.contains_key(unit.name.as_str()) {
            continue;
        }
        let ranks = existing
            .iter()
            .filter(|t| t.kind == DefinitionKind::Function && t.name == unit.name)
            .enumerate()
            .filter(|(_, t)| {
                hints
                    .iter()
                    .any(|hint| t.start < hint.end && hint.start < t.end)
            })
            .map(|(rank, _)| rank)
            .collect();
        hinted_ranks.insert(&unit.name, ranks);
    }
    for unit in &units {
        if unit
            .container
            .as_deref()
            .is_some_and(|container| new_containers.contains(&container))
        {
            continue;
        }
        let unit_text = &code[unit.start..unit.end];
        match unit.kind {
            DefinitionKind::Import => imports.push(unit.name.clone()),
            DefinitionKind::Function => {
                let tree = parse_tree(language, text)?;
                let targets = definitions(&grammar, tree.root_node(), text);
                let same_name = |target: &&Definition| {
                    target.kind == DefinitionKind::Function && target.name == unit.name
                };
                let exact: Vec<&Definition> = targets
                    .iter()
                    .filter(same_name)
                    .filter(|target| target.container == unit.container)
                    .collect();
                let any: Vec<&Definition> = targets.iter().filter(same_name).collect();
                // As many definitions of this name in the answer as in the file (copies of
                // one method in several classes): the n-th replaces the n-th.
                let in_answer = units
                    .iter()
                    .filter(|other| {
                        other.kind == DefinitionKind::Function && other.name == unit.name
                    })
                    .count();
                let occurrence = seen.entry(unit.name.clone()).or_insert(0);
                let nth = if in_answer == any.len() {
                    any.get(*occurrence).copied()
                } else {
                    // Else the n-th of the ones the request was about.
                    hinted_ranks
                        .get(unit.name.as_str())
                        .and_then(|ranks| ranks.get(*occurrence))
                        .and_then(|&rank| any.get(rank).copied())
                };
                *occurrence += 1;
                let target = match (exact.as_slice(), any.as_slice(), nth) {
                    ([one], _, _) => Some(*one),
                    ([], [one], _) => Some(*one),
                    ([], [], _) => None,
                    (_, _, Some(nth)) => Some(nth),
                    _ => {
                        return Err(format!(
                            "`{}` is defined more than once in the file; say which by its class or impl",
                            unit.name
                        ));
                    }
                };
                match target {
                    Some(target) => {
                        let indent = indentation_at(text, target.own_start).to_string();
                        // The unit's own leading comments replace the target's; without
                        // them, the target's are kept.
                        let start = if unit.start < unit.own_start {
                            target.start
                        } else {
                            target.own_start
                        };
                        // Small models drop docstrings when they rewrite a function: the
                        // original's is kept when the new version has none.
                        let unit_text = match (&target.docstring, &unit.docstring, unit.body_start)
                        {
                            (Some(doc), None, Some(body)) if body >= unit.start => {
                                let body = body - unit.start;
                                let doc_indent = indentation_at(text, doc.start).len();
                                let body_indent = indentation_at(unit_text, body).to_string();
                                let docstring: String = text[doc.clone()]
                                    .lines()
                                    .map(|line| {
                                        let cut =
                                            doc_indent.min(line.len() - line.trim_start().len());
                                        if line.trim().is_empty() {
                                            "\n".to_string()
                                        } else {
                                            format!("{body_indent}{}\n", &line[cut..])
                                        }
                                    })
                                    .collect();
                                format!("{}{docstring}{}", &unit_text[..body], &unit_text[body..])
                            }
                            _ => unit_text.to_string(),
                        };
                        let body = reindent(&unit_text, &indent);
                        let body = body.trim_end_matches('\n');
                        text.replace_range(start..target.end, body);
                        let end = start + body.len();
                        replaced_any = true;
                        anchors.insert(target.container.clone(), end);
                        anchors.insert(unit.container.clone(), end);
                    }
                    None => pending_new.push((unit.container.clone(), unit_text.to_string())),
                }
            }
            DefinitionKind::Other => {
                // A container in the block: its methods come as their own units. A new
                // container (no such name in the file) is added whole.
                let tree = parse_tree(language, text)?;
                let targets = definitions(&grammar, tree.root_node(), text);
                let exists = !unit.name.is_empty()
                    && targets.iter().any(|target| {
                        target.kind == DefinitionKind::Other && target.name == unit.name
                    });
                let is_container = units
                    .iter()
                    .any(|other| other.container.as_deref() == Some(unit.name.as_str()));
                if !exists || !is_container {
                    if exists {
                        continue;
                    }
                    pending_new.push((None, unit_text.to_string()));
                }
            }
        }
    }
    // New definitions: after the last replaced one in the same container, else at the top
    // level after the last replaced definition, else at the end of the file.
    for (container, unit_text) in pending_new {
        let tree = parse_tree(language, text)?;
        let targets = definitions(&grammar, tree.root_node(), text);
        let anchor = anchors.get(&container).copied();
        let (at, indent) = match (&container, anchor) {
            (Some(_), Some(at)) => (at, indentation_at(text, line_start(text, at)).to_string()),
            (None, anchor) => {
                // After the top-level item holding the last replaced definition (a method's
                // class or impl, not inside it).
                let last = anchor.or_else(|| anchors.values().max().copied());
                let at = last
                    .and_then(|at| {
                        targets
                            .iter()
                            .filter(|t| t.container.is_none() && t.start <= at && at <= t.end)
                            .map(|t| t.end)
                            .max()
                    })
                    .unwrap_or(text.trim_end().len());
                (at, String::new())
            }
            (Some(container), None) => {
                return Err(format!(
                    "cannot place the new `{}` member: no definition of `{container}` in \
                     the block replaces one in the file",
                    unit_text.lines().next().unwrap_or("").trim()
                ));
            }
        };
        let indent = if container.is_none() {
            String::new()
        } else {
            indent
        };
        let separator = if python && container.is_none() {
            "\n\n\n"
        } else {
            "\n\n"
        };
        let body = reindent(&unit_text, &indent);
        let insertion = format!("{separator}{}", body.trim_end_matches('\n'));
        text.insert_str(at, &insertion);
        anchors.insert(container, at + insertion.len());
    }
    if !imports.is_empty() {
        add_imports(language, &grammar, text, &imports)?;
    }
    if !replaced_any
        && units
            .iter()
            .all(|unit| unit.kind != DefinitionKind::Function)
    {
        return Err("the code block has no function definition".to_string());
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(())
}

/// Adds each import line not already in the file after its last top-level import (or at
/// the top, after a Python module docstring).
fn add_imports(
    language: &Language,
    grammar: &Grammar,
    text: &mut String,
    imports: &[String],
) -> Result<(), String> {
    let tree = parse_tree(language, text)?;
    let targets = definitions(grammar, tree.root_node(), text);
    let present: Vec<&str> = text.lines().map(str::trim).collect();
    let missing: Vec<&String> = imports
        .iter()
        .filter(|import| !present.contains(&import.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let last_import = targets
        .iter()
        .filter(|t| t.kind == DefinitionKind::Import && t.container.is_none())
        .map(|t| t.end)
        .max();
    let block: String = missing.iter().map(|import| format!("{import}\n")).collect();
    match last_import {
        Some(end) => {
            let at = text[end..].find('\n').map_or(text.len(), |n| end + n + 1);
            text.insert_str(at, &block);
        }
        None => {
            // After a module docstring, if the file starts with one.
            let root = tree.root_node();
            let first = root.named_child(0);
            let at = match first {
                Some(node)
                    if language.name == "python"
                        && node.kind() == "expression_statement"
                        && node.named_child(0).is_some_and(|c| c.kind() == "string") =>
                {
                    text[node.end_byte()..]
                        .find('\n')
                        .map_or(text.len(), |n| node.end_byte() + n + 1)
                }
                _ => 0,
            };
            let block = if at > 0 { format!("\n{block}") } else { block };
            text.insert_str(at, &block);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(path: &str, text: &str) -> Workspace {
        let mut workspace = Workspace::new();
        workspace.insert(path.to_string(), (Some(text.to_string()), text.to_string()));
        workspace
    }

    #[test]
    fn search_replace_blocks_parse_with_their_files() {
        let answer = "Here is the change.\n\nshop/a.py\n```python\n<<<<<<< SEARCH\ndef f():\n    return 1\n=======\ndef f():\n    return 2\n>>>>>>> REPLACE\n```\n\n**shop/b.py**\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n";
        let edits = parse(EditFormat::SearchReplace, answer, None).unwrap();
        assert_eq!(edits.len(), 2);
        assert_eq!(edits[0].path(), "shop/a.py");
        assert_eq!(edits[1].path(), "shop/b.py");
        assert!(parse(EditFormat::SearchReplace, "no blocks", None).is_err());
        let unclosed = "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n";
        assert!(
            parse(EditFormat::SearchReplace, unclosed, None)
                .unwrap_err()
                .contains("not closed")
        );
    }

    #[test]
    fn search_text_matches_despite_indentation_and_trailing_space() {
        let text = "class A:\n    def f(self):\n        return 1   \n\n    def g(self):\n        return 2\n";
        let mut ws = workspace("a.py", text);
        let edit = Edit::Replace {
            path: "a.py".into(),
            search: "def f(self):\n    return 1\n".into(),
            replace: "def f(self):\n    return 10\n".into(),
        };
        apply(&[edit], &mut ws, &BTreeMap::new()).unwrap();
        assert_eq!(
            ws["a.py"].1,
            "class A:\n    def f(self):\n        return 10\n\n    def g(self):\n        return 2\n"
        );
        let mut ws = workspace("a.py", "x = 1\nx = 1\n");
        let ambiguous = Edit::Replace {
            path: "a.py".into(),
            search: "x = 1\n".into(),
            replace: "x = 2\n".into(),
        };
        assert!(
            apply(&[ambiguous], &mut ws, &BTreeMap::new())
                .unwrap_err()
                .contains("2 places")
        );
        let missing = Edit::Replace {
            path: "a.py".into(),
            search: "y = 1\n".into(),
            replace: "".into(),
        };
        assert!(
            apply(&[missing], &mut ws, &BTreeMap::new())
                .unwrap_err()
                .contains("not in the file")
        );
    }

    #[test]
    fn definitions_replace_by_name_and_add_helpers_and_imports() {
        let text = "\"\"\"Doc.\"\"\"\n\nimport math\n\n\ndef a(x):\n    return x + 1\n\n\ndef b(y):\n    return y * 2\n";
        let answer = "shop/m.py\n```python\nfrom decimal import Decimal\n\ndef a(x):\n    return helper(x)\n\ndef helper(v):\n    return v + 1\n```\n";
        let edits = parse(EditFormat::Functions, answer, None).unwrap();
        let mut ws = workspace("shop/m.py", text);
        apply(&edits, &mut ws, &BTreeMap::new()).unwrap();
        assert_eq!(
            ws["shop/m.py"].1,
            "\"\"\"Doc.\"\"\"\n\nimport math\nfrom decimal import Decimal\n\n\ndef a(x):\n    return helper(x)\n\n\ndef helper(v):\n    return v + 1\n\n\ndef b(y):\n    return y * 2\n"
        );
    }

    #[test]
    fn a_dropped_docstring_is_kept_from_the_original() {
        let text = "class A:\n    def f(self, x):\n        \"\"\"Doubles x.\n\n        Really.\n        \"\"\"\n        return x * 2\n";
        let answer = "m.py\n```python\ndef f(self, x):\n    return twice(x)\n```\n";
        let edits = parse(EditFormat::Functions, answer, None).unwrap();
        let mut ws = workspace("m.py", text);
        apply(&edits, &mut ws, &BTreeMap::new()).unwrap();
        assert_eq!(
            ws["m.py"].1,
            "class A:\n    def f(self, x):\n        \"\"\"Doubles x.\n\n        Really.\n        \"\"\"\n        return twice(x)\n"
        );
        // A new docstring wins.
        let answer = "m.py\n```python\ndef f(self, x):\n    \"\"\"New.\"\"\"\n    return 0\n```\n";
        let mut ws = workspace("m.py", text);
        apply(
            &parse(EditFormat::Functions, answer, None).unwrap(),
            &mut ws,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            ws["m.py"].1,
            "class A:\n    def f(self, x):\n        \"\"\"New.\"\"\"\n        return 0\n"
        );
    }

    #[test]
    fn answers_put_paths_in_many_places() {
        let inside = "```python\n# src/a.py\ndef f():\n    return 1\n```\n";
        assert_eq!(
            parse(EditFormat::Functions, inside, None).unwrap()[0].path(),
            "src/a.py"
        );
        let nested = "```python\nsrc/a.py\n```python\ndef f():\n    return 1\n```\n";
        let edits = parse(EditFormat::Functions, nested, None).unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].path(), "src/a.py");
        let two = "```rust\n// src/a.rs\nfn f() {}\n\n// src/b.rs\nfn g() {}\n```\n";
        let edits = parse(EditFormat::Functions, two, None).unwrap();
        assert_eq!(
            edits.iter().map(Edit::path).collect::<Vec<_>>(),
            ["src/a.rs", "src/b.rs"]
        );
        for decorated in ["(src/a.py)", "\"src/a.py\":", "[src/a.py]", "`src/a.py`."] {
            let answer = format!("{decorated}\n```python\ndef f():\n    return 1\n```\n");
            let edits = parse(EditFormat::Functions, &answer, None).unwrap();
            assert_eq!(edits[0].path(), "src/a.py", "{decorated}");
        }
        let none = "```python\ndef f():\n    return 1\n```\n";
        assert!(
            parse(EditFormat::Functions, none, None)
                .unwrap_err()
                .contains("does not say which file")
        );
        // When the finding names one file, a block without a path is that file's (as Aider
        // does with a single file in the chat).
        let edits = parse(EditFormat::Functions, none, Some("src/m.py")).unwrap();
        assert_eq!(edits[0].path(), "src/m.py");
        let block = "<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n";
        assert!(parse(EditFormat::SearchReplace, block, None).is_err());
        let edits = parse(EditFormat::SearchReplace, block, Some("src/m.py")).unwrap();
        assert_eq!(edits[0].path(), "src/m.py");
    }

    #[test]
    fn same_named_methods_are_replaced_in_order() {
        let text = "class A:\n    def get(self):\n        return 1\n\n\nclass B:\n    def get(self):\n        return 1\n";
        let answer = "m.py\n```python\ndef get(self):\n    return one()\n\ndef get(self):\n    return one()\n\ndef one():\n    return 1\n```\n";
        let mut ws = workspace("m.py", text);
        apply(
            &parse(EditFormat::Functions, answer, None).unwrap(),
            &mut ws,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            ws["m.py"].1,
            "class A:\n    def get(self):\n        return one()\n\n\nclass B:\n    def get(self):\n        return one()\n\n\ndef one():\n    return 1\n"
        );
    }

    #[test]
    fn a_new_top_level_helper_goes_after_the_class_not_into_it() {
        let text =
            "class A:\n    def get(self):\n        return 1\n\n    def put(self):\n        pass\n";
        let answer =
            "m.py\n```python\ndef get(self):\n    return one()\n\ndef one():\n    return 1\n```\n";
        let mut ws = workspace("m.py", text);
        apply(
            &parse(EditFormat::Functions, answer, None).unwrap(),
            &mut ws,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            ws["m.py"].1,
            "class A:\n    def get(self):\n        return one()\n\n    def put(self):\n        pass\n\n\ndef one():\n    return 1\n"
        );
    }

    #[test]
    fn the_method_the_finding_is_about_is_the_one_replaced() {
        let text = "class A:\n    def get(self):\n        return 1\n\n\nclass B:\n    def get(self):\n        return 2\n\n\nclass C:\n    def get(self):\n        return 3\n";
        let answer = "m.py\n```python\ndef get(self):\n    return 20\n```\n";
        let b = text.find("class B").unwrap();
        let hints = BTreeMap::from([("m.py".to_string(), std::iter::once(b..b + 40).collect())]);
        let mut ws = workspace("m.py", text);
        apply(
            &parse(EditFormat::Functions, answer, None).unwrap(),
            &mut ws,
            &hints,
        )
        .unwrap();
        assert!(
            ws["m.py"]
                .1
                .contains("class B:\n    def get(self):\n        return 20\n")
        );
        assert!(ws["m.py"].1.contains("return 1\n") && ws["m.py"].1.contains("return 3\n"));
        let mut ws = workspace("m.py", text);
        let error = apply(
            &parse(EditFormat::Functions, answer, None).unwrap(),
            &mut ws,
            &BTreeMap::new(),
        );
        assert!(error.unwrap_err().contains("defined more than once"));
    }

    #[test]
    fn rust_methods_are_replaced_inside_their_impl() {
        let text = "use std::fmt;\n\nstruct S;\n\nimpl S {\n    /// Old doc.\n    fn f(&self) -> u32 {\n        1\n    }\n}\n\nfn g() -> u32 {\n    2\n}\n";
        let answer = "src/lib.rs\n```rust\nimpl S {\n    /// New doc.\n    fn f(&self) -> u32 {\n        one()\n    }\n\n    fn h(&self) {}\n}\n\nfn one() -> u32 {\n    1\n}\n```\n";
        let edits = parse(EditFormat::Functions, answer, None).unwrap();
        let mut ws = workspace("src/lib.rs", text);
        apply(&edits, &mut ws, &BTreeMap::new()).unwrap();
        let after = &ws["src/lib.rs"].1;
        assert!(after.contains("impl S {\n    /// New doc.\n    fn f(&self) -> u32 {\n        one()\n    }\n\n    fn h(&self) {}\n}"), "{after}");
        assert!(!after.contains("Old doc"));
        assert!(after.contains("\n\nfn one() -> u32 {\n    1\n}"), "{after}");
        assert!(after.contains("fn g() -> u32"));
    }

    #[test]
    fn paths_from_answers_stay_inside_the_root() {
        assert_eq!(normalize_path("./a/b.py").as_deref(), Some("a/b.py"));
        assert_eq!(normalize_path("a\\b.rs").as_deref(), Some("a/b.rs"));
        assert_eq!(normalize_path("../x.py"), None);
        assert_eq!(normalize_path("/etc/passwd"), None);
        assert_eq!(normalize_path("a/../../x.py"), None);
        assert_eq!(normalize_path("C:/x.py"), None);
    }
}
