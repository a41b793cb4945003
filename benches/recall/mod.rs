//! Clone recall by mutation and injection, in the spirit of Roy and Cordy's framework: take
//! real functions from a corpus, mutate each with Type-1, Type-2 or Type-3 operators,
//! append the mutant to another file of the corpus, and check that `scan` reports the
//! original and the mutant in one duplicate-code finding (read from its SARIF, like any
//! other consumer).
//!
//! Shared by `benches/clone-recall.rs` (large corpora) and the test suite (fixtures).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where one injected clone pair is: the original and the mutant, 1-based inclusive lines.
#[derive(Clone, Debug)]
pub struct Injection {
    pub clone_type: u8,
    pub original: (String, u32, u32),
    pub mutant: (String, u32, u32),
    /// What the mutation did, for reports (read by benches/clone-recall.rs).
    #[allow(dead_code)]
    pub operators: Vec<&'static str>,
}

/// A small deterministic generator (xorshift64*), so that a seed names one injection set.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    pub fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound.max(1)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Rust,
}

impl Lang {
    pub fn extension(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::Rust => "rs",
        }
    }

    fn comment(self) -> &'static str {
        match self {
            Lang::Python => "# injected: a comment that changes nothing",
            Lang::Rust => "// injected: a comment that changes nothing",
        }
    }

    fn statement(self, counter: usize) -> String {
        match self {
            Lang::Python => format!("injected_{counter} = len(str({counter}))"),
            Lang::Rust => format!("let injected_{counter} = {counter} + 1;"),
        }
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }

    fn keywords(self) -> &'static [&'static str] {
        match self {
            Lang::Python => &[
                "self",
                "cls",
                "def",
                "return",
                "if",
                "else",
                "elif",
                "for",
                "in",
                "while",
                "not",
                "and",
                "or",
                "is",
                "None",
                "True",
                "False",
                "try",
                "except",
                "finally",
                "with",
                "as",
                "lambda",
                "yield",
                "pass",
                "break",
                "continue",
                "raise",
                "from",
                "import",
                "class",
                "async",
                "await",
                "del",
                "global",
                "nonlocal",
                "assert",
                "super",
                "len",
                "str",
                "int",
                "list",
                "dict",
                "set",
                "isinstance",
                "print",
            ],
            Lang::Rust => &[
                "self", "Self", "fn", "let", "mut", "return", "if", "else", "for", "in", "while",
                "loop", "match", "impl", "pub", "crate", "super", "use", "mod", "struct", "enum",
                "trait", "where", "as", "ref", "move", "async", "await", "unsafe", "const",
                "static", "type", "dyn", "true", "false", "break", "continue", "Some", "None",
                "Ok", "Err", "Box", "Vec", "String", "Option", "Result", "u8", "u16", "u32", "u64",
                "usize", "i32", "i64", "f64", "bool",
            ],
        }
    }
}

/// A function of the corpus that may be copied.
struct Source {
    path: String,
    start: u32,
    end: u32,
}

fn copy_corpus(corpus: &Path, out: &Path, lang: Lang) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![corpus.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == lang.extension()) {
                let relative = path
                    .strip_prefix(corpus)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let target = out.join(&relative);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(&path, &target).unwrap();
                files.push(relative.replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}

fn run_json(args: &[&std::ffi::OsStr]) -> Value {
    let mut argv: Vec<std::ffi::OsString> = vec!["refactor-ai".into()];
    argv.extend(args.iter().map(|arg| arg.to_os_string()));
    argv.push("--no-cache".into());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = refactor_ai::run_with(argv, &mut stdout, &mut stderr, Default::default());
    assert!(code <= 1, "{}", String::from_utf8_lossy(&stderr));
    serde_json::from_slice(&stdout).expect("JSON output")
}

fn functions(out: &Path, min_lines: u32, max_lines: u32) -> Vec<Source> {
    let report = run_json(&[
        "metrics".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let mut found = Vec::new();
    for file in report["files"].as_array().unwrap() {
        for function in file["functions"].as_array().unwrap() {
            let lines = function["metrics"]["lines"].as_u64().unwrap() as u32;
            if (min_lines..=max_lines).contains(&lines) {
                found.push(Source {
                    path: file["path"].as_str().unwrap().to_string(),
                    start: function["start_line"].as_u64().unwrap() as u32,
                    end: function["end_line"].as_u64().unwrap() as u32,
                });
            }
        }
    }
    found
}

fn parses(lang: Lang, text: &str) -> bool {
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&lang.grammar()).unwrap();
    parser
        .parse(text, None)
        .is_some_and(|tree| !tree.root_node().has_error())
}

fn dedent(lines: &[String]) -> Vec<String> {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").to_string())
        .collect()
}

fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// A line after which a new line of code may go: it ends a statement or opens a block.
fn opens_or_ends(lang: Lang, line: &str) -> bool {
    let line = line.trim_end();
    match lang {
        Lang::Python => line.ends_with(':') && !line.trim_start().starts_with('#'),
        Lang::Rust => line.ends_with(';') || line.ends_with('{'),
    }
}

/// The indentation a line inserted after `lines[at]` needs.
fn next_indent(lines: &[String], at: usize) -> String {
    lines[at + 1..]
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| indentation(line).to_string())
        .unwrap_or_else(|| format!("{}    ", indentation(&lines[at])))
}

fn insertion_points(lang: Lang, lines: &[String]) -> Vec<usize> {
    (1..lines.len().saturating_sub(1))
        .filter(|&index| opens_or_ends(lang, &lines[index]))
        .collect()
}

/// Type 1: comments and blank lines added.
fn mutate_layout(lang: Lang, lines: &mut Vec<String>, random: &mut Random) -> Vec<&'static str> {
    let mut applied = Vec::new();
    let points = insertion_points(lang, lines);
    if !points.is_empty() {
        let at = points[random.below(points.len())];
        let indent = next_indent(lines, at);
        lines.insert(at + 1, format!("{indent}{}", lang.comment()));
        applied.push("comment");
    }
    let points = insertion_points(lang, lines);
    if !points.is_empty() {
        let at = points[random.below(points.len())];
        lines.insert(at + 1, String::new());
        applied.push("blank line");
    }
    applied
}

/// Type 2: names renamed consistently, literal values changed.
fn mutate_names(lang: Lang, lines: &mut [String], random: &mut Random) -> Vec<&'static str> {
    let mut applied = Vec::new();
    let body = lines[1..].join("\n");
    let mut names: Vec<String> = Vec::new();
    for word in body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let starts_lower = word.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if starts_lower && word.len() > 1 && !lang.keywords().contains(&word) {
            names.push(word.to_string());
        }
    }
    names.sort();
    let mut counted: Vec<(String, usize)> = Vec::new();
    for name in names {
        match counted.last_mut() {
            Some((last, count)) if *last == name => *count += 1,
            _ => counted.push((name, 1)),
        }
    }
    counted.retain(|(_, count)| *count >= 2);
    let renames = counted.len().min(1 + random.below(3));
    for _ in 0..renames {
        let (name, _) = counted.remove(random.below(counted.len()));
        let renamed = format!("{name}_renamed");
        for line in lines.iter_mut() {
            *line = replace_word(line, &name, &renamed);
        }
        applied.push("rename");
    }
    // One integer literal changed, if there is one.
    for line in lines.iter_mut().skip(1) {
        if let Some((start, end)) = first_integer(line) {
            let value: u64 = line[start..end].parse().unwrap_or(0);
            line.replace_range(start..end, &(value + 7).to_string());
            applied.push("literal");
            break;
        }
    }
    applied
}

fn replace_word(line: &str, word: &str, with: &str) -> String {
    let mut out = String::new();
    let bytes = line.as_bytes();
    let is_word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let mut at = 0;
    while let Some(found) = line[at..].find(word) {
        let start = at + found;
        let end = start + word.len();
        let before = start == 0 || !is_word(bytes[start - 1]);
        let after = end == bytes.len() || !is_word(bytes[end]);
        out.push_str(&line[at..start]);
        out.push_str(if before && after { with } else { word });
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

fn first_integer(line: &str) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit()
            && (index == 0
                || !(bytes[index - 1].is_ascii_alphanumeric()
                    || bytes[index - 1] == b'_'
                    || bytes[index - 1] == b'.'))
        {
            let end = (index..bytes.len())
                .find(|&at| !bytes[at].is_ascii_digit())
                .unwrap_or(bytes.len());
            let next = bytes.get(end).copied().unwrap_or(b' ');
            if !(next.is_ascii_alphanumeric() || next == b'_' || next == b'.') {
                return Some((index, end));
            }
            index = end;
        }
        index += 1;
    }
    None
}

/// Type 3: one to three lines of code inserted or deleted.
fn mutate_statements(
    lang: Lang,
    lines: &mut Vec<String>,
    random: &mut Random,
) -> Vec<&'static str> {
    let mut applied = Vec::new();
    let changes = 1 + random.below(3);
    for change in 0..changes {
        if random.below(2) == 0 {
            let points = insertion_points(lang, lines);
            if points.is_empty() {
                continue;
            }
            let at = points[random.below(points.len())];
            let indent = next_indent(lines, at);
            lines.insert(at + 1, format!("{indent}{}", lang.statement(change)));
            applied.push("insert");
        } else {
            // A simple one-line statement that is neither the first nor the last line.
            let candidates: Vec<usize> = (1..lines.len().saturating_sub(1))
                .filter(|&index| {
                    let line = lines[index].trim();
                    let next_indent = lines
                        .get(index + 1)
                        .map_or(0, |next| indentation(next).len());
                    !line.is_empty()
                        && !line.starts_with('#')
                        && !line.starts_with("//")
                        && next_indent <= indentation(&lines[index]).len()
                        && match lang {
                            Lang::Python => {
                                !line.ends_with(':') && !line.ends_with(',') && !line.ends_with('(')
                            }
                            Lang::Rust => line.ends_with(';'),
                        }
                })
                .collect();
            if candidates.is_empty() {
                continue;
            }
            lines.remove(candidates[random.below(candidates.len())]);
            applied.push("delete");
        }
    }
    applied
}

/// Copies the `lang` files of `corpus` into `out` and injects `per_type` mutants of each
/// type, each into a file other than its original's. Mutants are re-parsed and dropped if
/// the mutation broke them (a mutant must be valid code).
pub fn inject(corpus: &Path, out: &Path, lang: Lang, per_type: usize, seed: u64) -> Vec<Injection> {
    let files = copy_corpus(corpus, out, lang);
    let sources = functions(out, 8, 60);
    assert!(
        !sources.is_empty(),
        "no 8-60 line functions in {}",
        corpus.display()
    );
    let mut analysed: Vec<String> = sources.iter().map(|source| source.path.clone()).collect();
    analysed.dedup();
    let mut random = Random::new(seed);
    let mut texts: std::collections::HashMap<String, Vec<String>> = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            (file.clone(), text.lines().map(str::to_string).collect())
        })
        .collect();
    let originals = texts.clone();
    let mut used = std::collections::HashSet::new();
    let mut injections = Vec::new();
    for clone_type in 1..=3u8 {
        let mut made = 0;
        let mut attempts = 0;
        while made < per_type && attempts < per_type * 20 {
            attempts += 1;
            let pick = random.below(sources.len());
            if used.contains(&pick) {
                continue;
            }
            let source = &sources[pick];
            let lines: Vec<String> =
                originals[&source.path][source.start as usize - 1..source.end as usize].to_vec();
            let mut mutant = dedent(&lines);
            let operators = match clone_type {
                1 => mutate_layout(lang, &mut mutant, &mut random),
                2 => mutate_names(lang, &mut mutant, &mut random),
                _ => mutate_statements(lang, &mut mutant, &mut random),
            };
            if operators.is_empty() || !parses(lang, &mutant.join("\n")) {
                continue;
            }
            // Only into files `scan` analyses (not, say, generated migrations it skips).
            let others: Vec<&String> = analysed
                .iter()
                .filter(|file| **file != source.path)
                .collect();
            if others.is_empty() {
                break;
            }
            let target = others[random.below(others.len())].clone();
            let text = texts.get_mut(&target).unwrap();
            text.push(String::new());
            text.push(String::new());
            let start = text.len() as u32 + 1;
            text.extend(mutant.iter().cloned());
            let end = text.len() as u32;
            used.insert(pick);
            injections.push(Injection {
                clone_type,
                original: (source.path.clone(), source.start, source.end),
                mutant: (target, start, end),
                operators,
            });
            made += 1;
        }
    }
    for (file, lines) in &texts {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(out.join(file), text).unwrap();
    }
    injections
}

/// Per type: (found, injected). A pair is found when one duplicate-code result has a
/// location covering at least half of the original's lines and another covering at least
/// half of the mutant's.
pub fn score(out: &Path, injections: &[Injection]) -> [(usize, usize); 3] {
    let found = found(out, injections);
    let mut scores = [(0, 0); 3];
    for (injection, found) in injections.iter().zip(found) {
        let slot = &mut scores[usize::from(injection.clone_type) - 1];
        slot.1 += 1;
        slot.0 += usize::from(found);
    }
    scores
}

/// Whether each injection was found.
pub fn found(out: &Path, injections: &[Injection]) -> Vec<bool> {
    let sarif = run_json(&[
        "scan".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "sarif".as_ref(),
    ]);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let mut instances: Vec<Vec<(String, u32, u32)>> = Vec::new();
    for result in results {
        if !result["ruleId"]
            .as_str()
            .unwrap_or("")
            .starts_with("duplicate")
        {
            continue;
        }
        let mut locations = Vec::new();
        for location in result["locations"]
            .as_array()
            .into_iter()
            .chain(result["relatedLocations"].as_array())
            .flatten()
        {
            let physical = &location["physicalLocation"];
            locations.push((
                physical["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                physical["region"]["startLine"].as_u64().unwrap() as u32,
                physical["region"]["endLine"].as_u64().unwrap() as u32,
            ));
        }
        instances.push(locations);
    }
    let covers = |found: &(String, u32, u32), truth: &(String, u32, u32)| {
        let overlap = found.2.min(truth.2) as i64 - found.1.max(truth.1) as i64 + 1;
        found.0 == truth.0 && overlap * 2 >= (truth.2 - truth.1 + 1) as i64
    };
    injections
        .iter()
        .map(|injection| {
            instances.iter().any(|locations| {
                locations.iter().any(|l| covers(l, &injection.original))
                    && locations.iter().any(|l| covers(l, &injection.mutant))
            })
        })
        .collect()
}

/// A directory for an injected corpus.
pub fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("refactor-ai-recall-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
