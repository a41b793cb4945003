//! Duplicate code: clone classes of whole functions or runs of whole statements, found
//! across every file of one language.
//!
//! - Type 1 and 2 (identical token kinds; Type 1 also identical texts): functions are
//!   grouped by the hash of their token kinds; runs of statements are found by hashing the
//!   smallest run that reaches the size limits from every statement of every block, then
//!   grown to the right while every instance agrees. Hashes only propose: instances are
//!   compared token kind by token kind before anything is reported.
//! - Type 3 (near-miss): functions that share at least half of their statements (exactly,
//!   nested ones included; statements too common to tell functions apart are left out)
//!   are candidates, and a candidate pair is a clone when the longest common
//!   subsequence of their token kinds covers `min_similarity` of both (Dice).
//!
//! Boundaries are syntactic by construction: a unit is a function, or consecutive
//! statements of one block.

pub(crate) mod extract;
pub(crate) mod report;
mod similarity;

use rustc_hash::FxHashMap as HashMap;

use rayon::prelude::*;

use crate::config::Duplicates;
use crate::finding::Severity;
pub(crate) use extract::{CloneUnits, Span};

/// The duplicate-code rules, for config validation and the SARIF rules table.
pub(crate) struct CloneRule {
    pub(crate) id: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) help: &'static str,
    pub(crate) severity: Severity,
}

pub(crate) const RULES: &[CloneRule] = &[
    CloneRule {
        id: "duplicate-code/type-1",
        summary: "Identical code (apart from layout and comments) in several places",
        help: "Keep one copy: move it into a function (or method) that every place calls.",
        severity: Severity::Warning,
    },
    CloneRule {
        id: "duplicate-code/type-2",
        summary: "Code identical apart from names and literal values in several places",
        help: "Extract one function and pass what differs (the renamed names and the \
               literals) as parameters; consistently renamed copies map onto one \
               parameter per name.",
        severity: Severity::Warning,
    },
    CloneRule {
        id: "duplicate-code/type-3",
        summary: "Near-miss copies: the same code with statements added, removed or changed",
        help: "Extract the shared part into one function; pass the differences in as \
               parameters or callbacks, or keep them at the call sites.",
        severity: Severity::Note,
    },
];

/// One file's part in clone detection.
pub(crate) struct FileUnits<'a> {
    /// The language's index in the table: clones never cross languages.
    pub(crate) language: usize,
    /// The whole file is test code (by its path).
    pub(crate) is_test: bool,
    pub(crate) units: &'a CloneUnits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unit {
    Function,
    Statements,
}

impl Unit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unit::Function => "function",
            Unit::Statements => "statements",
        }
    }
}

/// One copy of the cloned code.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// Index into the `files` given to [`detect`].
    pub(crate) file: usize,
    pub(crate) span: Span,
    /// The function's qualified name, for function units.
    pub(crate) function: Option<String>,
    /// The instance's tokens in its file's token stream.
    pub(crate) range: extract::TokenRange,
    pub(crate) exact: u64,
    pub(crate) tokens: u32,
    /// Test code: a test file, or a test item inside a file.
    pub(crate) in_test: bool,
}

/// Two or more instances of one fragment.
#[derive(Clone, Debug)]
pub(crate) struct CloneClass {
    pub(crate) clone_type: u8,
    pub(crate) unit: Unit,
    pub(crate) instances: Vec<Instance>,
    /// 1.0 for Types 1 and 2; the least pairwise similarity for Type 3.
    pub(crate) similarity: f64,
    /// The shape hash of the first instance (a stable name for the class).
    pub(crate) shape: u64,
}

impl CloneClass {
    pub(crate) fn lines(&self) -> u32 {
        self.instances
            .iter()
            .map(|instance| instance.span.lines())
            .min()
            .unwrap_or(0)
    }

    pub(crate) fn tokens(&self) -> u32 {
        self.instances
            .iter()
            .map(|instance| instance.tokens)
            .min()
            .unwrap_or(0)
    }

    pub(crate) fn files(&self) -> usize {
        let mut files: Vec<usize> = self
            .instances
            .iter()
            .map(|instance| instance.file)
            .collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    }

    /// Lines that would go away if the copies became one, weighted by how directly the
    /// copies map onto one function (Type 1 most, Type 3 least) and by how many files they
    /// are spread over (scattered copies cost more to keep in step).
    pub(crate) fn value(&self) -> f64 {
        let removable = f64::from(self.lines()) * (self.instances.len() as f64 - 1.0);
        let weight = match self.clone_type {
            1 => 1.0,
            2 => 0.9,
            _ => 0.7 * self.similarity,
        };
        let spread = 1.0 + 0.25 * (self.files() as f64 - 1.0);
        removable * weight * spread
    }
}

/// A function without statements (an empty body, a docstring) is never a clone. Rust
/// functions are often one expression, so one statement is enough; stubs are left out by
/// the token limit.
const MIN_FUNCTION_STATEMENTS: u32 = 1;

/// A unit is data rather than code when literals are this share of its tokens or more ...
const DATA_LITERAL_SHARE: f64 = 0.5;

/// ... or, for statements outside functions (settings, locale and lookup tables, class
/// attributes), this share.
const DECLARATION_DATA_LITERAL_SHARE: f64 = 0.15;

/// Near-miss copies must also share this much of their actual text (names and literals
/// included): functions that merely have the same shape are not copies of each other.
const MIN_SHARED_TEXT: f64 = 0.5;

/// A statement found in more functions than this is too common to suggest that two
/// functions are near-miss copies (`return None`, `pass`, `i += 1`).
const MAX_STATEMENT_FREQUENCY: usize = 64;

/// Drops the blocks too small to hold a run of statements of the configured size (most
/// of them: `if` bodies of a line or two), so that they cost nothing to store and compare.
pub(crate) fn prune(mut units: CloneUnits, settings: &Duplicates) -> CloneUnits {
    units.blocks.retain(|block| {
        let tokens: u32 = block.iter().map(|statement| statement.tokens()).sum();
        let lines = match (block.first(), block.last()) {
            (Some(first), Some(last)) => {
                last.span.end_line.saturating_sub(first.span.start_line) + 1
            }
            _ => 0,
        };
        tokens >= settings.min_tokens && lines >= settings.min_lines
    });
    units
}

/// Finds clone classes across `files`, ordered by [`CloneClass::value`], highest first.
pub(crate) fn detect(files: &[FileUnits], settings: &Duplicates) -> Vec<CloneClass> {
    let mut classes = function_classes(files, settings);
    let statement_classes = statement_classes(files, settings);
    // A run of statements inside copies of one function is that function's clone again.
    let function_files = classes_by_file(&classes);
    let statement_classes: Vec<CloneClass> = statement_classes
        .into_iter()
        .filter(|class| !covered_by(class, &classes, &function_files))
        .collect();
    if settings.near_miss {
        let near = near_miss_classes(files, settings, &classes);
        classes.extend(near);
    }
    classes.extend(statement_classes);
    // Clones of functions nested in cloned functions say nothing new.
    // Only classes with an instance in the file of a class's first instance can cover it.
    let by_file = classes_by_file(&classes);
    let keep: Vec<bool> = classes
        .iter()
        .enumerate()
        .map(|(index, class)| {
            let Some(first) = class.instances.first() else {
                return true;
            };
            !by_file[&first.file]
                .iter()
                .any(|&other| other != index && strictly_covered(class, &classes[other]))
        })
        .collect();
    let mut classes: Vec<CloneClass> = classes
        .into_iter()
        .zip(keep)
        .filter_map(|(class, keep)| keep.then_some(class))
        .collect();
    for class in &mut classes {
        class
            .instances
            .sort_by_key(|instance| (instance.file, instance.span.start_byte));
    }
    classes.sort_by(|a, b| {
        b.value()
            .total_cmp(&a.value())
            .then_with(|| first_key(a).cmp(&first_key(b)))
    });
    classes
}

fn first_key(class: &CloneClass) -> (usize, u32) {
    class
        .instances
        .first()
        .map_or((0, 0), |instance| (instance.file, instance.span.start_byte))
}

/// Whether a function is big enough, and code rather than data, to be a clone on its own.
fn eligible(function: &extract::FunctionUnit, settings: &Duplicates) -> bool {
    // A smaller function still counts when it does more than one thing: short bodies of
    // several statements (often under a long docstring) are copied as often as long ones,
    // while one-statement ones are mostly stubs and delegations that only look alike.
    let tokens = function.tokens();
    let big_enough = tokens >= settings.min_function_tokens
        || (tokens * 4 >= settings.min_function_tokens * 3 && function.statement_count >= 2);
    big_enough
        && function.span.lines() >= settings.min_lines
        && function.statement_count >= MIN_FUNCTION_STATEMENTS
        && !is_data(function.literals, tokens)
}

fn is_data(literals: u32, tokens: u32) -> bool {
    tokens > 0 && f64::from(literals) >= DATA_LITERAL_SHARE * f64::from(tokens)
}

/// For each file, the indices of the classes with an instance in it (each once, in order).
fn classes_by_file(classes: &[CloneClass]) -> HashMap<usize, Vec<usize>> {
    let mut by_file: HashMap<usize, Vec<usize>> = HashMap::default();
    for (index, class) in classes.iter().enumerate() {
        for instance in &class.instances {
            let list = by_file.entry(instance.file).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }
    by_file
}

/// Every instance of `class` lies inside an instance of some class in `others`
/// (`by_file`: [`classes_by_file`] of `others`).
fn covered_by(
    class: &CloneClass,
    others: &[CloneClass],
    by_file: &HashMap<usize, Vec<usize>>,
) -> bool {
    class.instances.iter().all(|instance| {
        by_file.get(&instance.file).is_some_and(|indices| {
            indices.iter().any(|&other| {
                others[other]
                    .instances
                    .iter()
                    .any(|outer| outer.file == instance.file && outer.span.contains(&instance.span))
            })
        })
    })
}

/// Every instance of `class` lies inside an instance of `bigger`, which is larger.
fn strictly_covered(class: &CloneClass, bigger: &CloneClass) -> bool {
    bigger.tokens() > class.tokens()
        && class.instances.iter().all(|instance| {
            bigger
                .instances
                .iter()
                .any(|outer| outer.file == instance.file && outer.span.contains(&instance.span))
        })
}

/// Types 1 and 2 among whole functions.
fn function_classes(files: &[FileUnits], settings: &Duplicates) -> Vec<CloneClass> {
    let mut groups: HashMap<(usize, u64), Vec<(usize, usize)>> = HashMap::default();
    for (file_index, file) in files.iter().enumerate() {
        for (index, function) in file.units.functions.iter().enumerate() {
            if eligible(function, settings) {
                groups
                    .entry((file.language, function.shape))
                    .or_default()
                    .push((file_index, index));
            }
        }
    }
    let mut classes = Vec::new();
    for members in groups.into_values().filter(|members| members.len() > 1) {
        // Hashes only propose; equal token kinds decide.
        let mut exact: HashMap<&[u16], Vec<(usize, usize)>> = HashMap::default();
        for (file, index) in members {
            let function = &files[file].units.functions[index];
            exact
                .entry(files[file].units.kinds(function.range))
                .or_default()
                .push((file, index));
        }
        for members in exact.into_values().filter(|members| members.len() > 1) {
            let instances: Vec<Instance> = members
                .iter()
                .map(|&(file, index)| {
                    let function = &files[file].units.functions[index];
                    Instance {
                        file,
                        span: function.span,
                        function: Some(function.qualified_name.clone()),
                        range: function.range,
                        exact: function.exact,
                        tokens: function.tokens(),
                        in_test: files[file].is_test || function.in_test,
                    }
                })
                .collect();
            let (file, index) = members[0];
            classes.push(CloneClass {
                clone_type: clone_type(&instances),
                unit: Unit::Function,
                instances,
                similarity: 1.0,
                shape: files[file].units.functions[index].shape,
            });
        }
    }
    classes
}

fn clone_type(instances: &[Instance]) -> u8 {
    if instances
        .iter()
        .all(|instance| instance.exact == instances[0].exact)
    {
        1
    } else {
        2
    }
}

/// Where a run of statements starts: (file, block, first statement).
type RunStart = (usize, usize, usize);

/// Types 1 and 2 among runs of whole statements of one block.
fn statement_classes(files: &[FileUnits], settings: &Duplicates) -> Vec<CloneClass> {
    let mut windows: HashMap<(usize, u64, usize), Vec<RunStart>> = HashMap::default();
    for (file_index, file) in files.iter().enumerate() {
        for (block_index, block) in file.units.blocks.iter().enumerate() {
            for start in 0..block.len() {
                if let Some((hash, length)) = smallest_run(block, start, settings) {
                    windows
                        .entry((file.language, hash, length))
                        .or_default()
                        .push((file_index, block_index, start));
                }
            }
        }
    }
    let statements = |(file, block, _): RunStart| &files[file].units.blocks[block];
    let mut classes = Vec::new();
    for ((_, _, length), members) in windows {
        if members.len() < 2 {
            continue;
        }
        // Hashes only propose: keep the members whose shapes equal the first's, and drop
        // members that overlap an earlier one (a statement repeated in one block).
        let first = members[0];
        let shapes = |member: RunStart| -> Vec<u64> {
            statements(member)[member.2..member.2 + length]
                .iter()
                .map(|statement| statement.shape)
                .collect()
        };
        let reference = shapes(first);
        let mut kept: Vec<RunStart> = Vec::new();
        for member in members {
            let overlaps = kept.iter().any(|other| {
                other.0 == member.0 && other.1 == member.1 && member.2 < other.2 + length
            });
            if !overlaps && shapes(member) == reference {
                kept.push(member);
            }
        }
        if kept.len() < 2 {
            continue;
        }
        // Maximal to the left: if every instance's previous statement agrees too, the run
        // that starts there is the one to report.
        let previous = |member: RunStart| {
            member
                .2
                .checked_sub(1)
                .map(|index| statements(member)[index].shape)
                .filter(|&shape| shape != 0)
        };
        if let Some(shape) = previous(kept[0])
            && kept.iter().all(|&member| previous(member) == Some(shape))
        {
            continue;
        }
        // Grow to the right while every instance agrees and instances stay apart.
        let mut end = length;
        loop {
            let next = |member: RunStart| {
                statements(member)
                    .get(member.2 + end)
                    .map(|statement| statement.shape)
                    .filter(|&shape| shape != 0)
            };
            let Some(shape) = next(kept[0]) else { break };
            let agree = kept.iter().all(|&member| next(member) == Some(shape));
            let apart = kept.windows(2).all(|pair| {
                pair[0].0 != pair[1].0 || pair[0].1 != pair[1].1 || pair[0].2 + end < pair[1].2
            });
            if !agree || !apart {
                break;
            }
            end += 1;
        }
        let instances: Vec<Instance> = kept
            .iter()
            .map(|&member| {
                let run = &statements(member)[member.2..member.2 + end];
                let (first, last) = (run[0].span, run[run.len() - 1].span);
                let exact = run
                    .iter()
                    .fold(0, |hash, statement| extract::mix(hash, statement.exact));
                Instance {
                    file: member.0,
                    span: Span {
                        start_byte: first.start_byte,
                        end_byte: last.end_byte,
                        start_line: first.start_line,
                        end_line: last.end_line,
                        start_column: first.start_column,
                        end_column: last.end_column,
                    },
                    function: None,
                    range: extract::TokenRange {
                        start: run[0].range.start,
                        end: run[run.len() - 1].range.end,
                    },
                    exact,
                    tokens: run.iter().map(|statement| statement.tokens()).sum(),
                    in_test: files[member.0].is_test || run[0].in_test,
                }
            })
            .collect();
        let literals: u32 = statements(kept[0])[kept[0].2..kept[0].2 + end]
            .iter()
            .map(|statement| statement.literals)
            .sum();
        let outside_functions = statements(kept[0])[kept[0].2].outside_functions;
        let tokens = f64::from(instances[0].tokens);
        if is_data(literals, instances[0].tokens)
            || (outside_functions && f64::from(literals) >= DECLARATION_DATA_LITERAL_SHARE * tokens)
        {
            continue;
        }
        classes.push(CloneClass {
            clone_type: clone_type(&instances),
            unit: Unit::Statements,
            instances,
            similarity: 1.0,
            shape: reference[0],
        });
    }
    classes
}

/// From statement `start` of `block`, the hash and length of the shortest run of
/// statements that reaches both size limits, if there is one before a statement that
/// cannot take part.
fn smallest_run(
    block: &[extract::Statement],
    start: usize,
    settings: &Duplicates,
) -> Option<(u64, usize)> {
    let first_line = block[start].span.start_line;
    let mut hash = 0u64;
    let mut tokens = 0u32;
    for (offset, statement) in block[start..].iter().enumerate() {
        if statement.shape == 0 {
            return None;
        }
        hash = extract::mix(hash, statement.shape);
        tokens += statement.tokens();
        let lines = statement.span.end_line.saturating_sub(first_line) + 1;
        if tokens >= settings.min_tokens && lines >= settings.min_lines {
            return Some((hash, offset + 1));
        }
    }
    None
}

/// Type 3 among whole functions, leaving out pairs already in one Type-1/2 class.
fn near_miss_classes(
    files: &[FileUnits],
    settings: &Duplicates,
    exact_classes: &[CloneClass],
) -> Vec<CloneClass> {
    let mut units: Vec<(usize, usize)> = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        for (index, function) in file.units.functions.iter().enumerate() {
            if eligible(function, settings) {
                units.push((file_index, index));
            }
        }
    }
    let function = |unit: usize| {
        let (file, index) = units[unit];
        &files[file].units.functions[index]
    };
    // Which functions each statement shape occurs in.
    let mut postings: HashMap<(usize, u64), Vec<usize>> = HashMap::default();
    for unit in 0..units.len() {
        let language = files[units[unit].0].language;
        for &shape in &function(unit).statements {
            postings.entry((language, shape)).or_default().push(unit);
        }
    }
    let same_exact_class: HashMap<(usize, u32), usize> = exact_classes
        .iter()
        .enumerate()
        .filter(|(_, class)| class.unit == Unit::Function)
        .flat_map(|(index, class)| {
            class
                .instances
                .iter()
                .map(move |instance| ((instance.file, instance.span.start_byte), index))
        })
        .collect();
    // Each function's candidates are scored on its own: the functions are shared out
    // among the threads, each with its own counts.
    let mut edges: Vec<(usize, usize, f64)> = (0..units.len())
        .into_par_iter()
        .map_init(HashMap::<usize, u32>::default, |shared, a| {
            let mut edges = Vec::new();
            shared.clear();
            let language = files[units[a].0].language;
            for &shape in &function(a).statements {
                let Some(list) = postings.get(&(language, shape)) else {
                    continue;
                };
                if list.len() > MAX_STATEMENT_FREQUENCY {
                    continue;
                }
                for &b in list.iter().filter(|&&b| b > a) {
                    *shared.entry(b).or_insert(0) += 1;
                }
            }
            for (&b, &count) in shared.iter() {
                let (fa, fb) = (function(a), function(b));
                let smaller = fa.statements.len().min(fb.statements.len());
                if count < 2 || (count as usize) * 2 < smaller {
                    continue;
                }
                if fa.shape == fb.shape {
                    continue;
                }
                let (file_a, file_b) = (units[a].0, units[b].0);
                // Tests spell out each scenario on purpose: near-miss copies between two tests
                // are the norm, not a refactoring opportunity, unless asked for.
                let in_test_a = files[file_a].is_test || fa.in_test;
                let in_test_b = files[file_b].is_test || fb.in_test;
                if in_test_a && in_test_b && !settings.near_miss_in_tests {
                    continue;
                }
                if file_a == file_b && (fa.span.contains(&fb.span) || fb.span.contains(&fa.span)) {
                    continue;
                }
                let class_a = same_exact_class.get(&(file_a, fa.span.start_byte));
                if class_a.is_some()
                    && class_a == same_exact_class.get(&(file_b, fb.span.start_byte))
                {
                    continue;
                }
                let (units_a, units_b) = (files[file_a].units, files[file_b].units);
                if let Some(similarity) = similarity::dice_at_least(
                    units_a.kinds(fa.range),
                    units_b.kinds(fb.range),
                    settings.min_similarity,
                ) && similarity::dice_at_least(
                    units_a.texts(fa.range),
                    units_b.texts(fb.range),
                    MIN_SHARED_TEXT,
                )
                .is_some()
                {
                    edges.push((a, b, similarity));
                }
            }
            edges
        })
        .flatten_iter()
        .collect();
    // Classes are stars: every member is similar to the class's first member, so that a
    // chain of pairwise-similar functions does not become one class of unrelated code.
    // The most similar pairs are placed first.
    edges.sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    let mut center_of: HashMap<usize, usize> = HashMap::default();
    let mut stars: HashMap<usize, (Vec<usize>, f64)> = HashMap::default();
    for &(a, b, similarity) in &edges {
        let (center, member) = match (center_of.get(&a).copied(), center_of.get(&b).copied()) {
            (None, None) => (a, b),
            (Some(center), None) if center == a => (a, b),
            (None, Some(center)) if center == b => (b, a),
            _ => continue,
        };
        center_of.insert(center, center);
        center_of.insert(member, center);
        let star = stars.entry(center).or_insert_with(|| (vec![center], 1.0));
        star.0.push(member);
        star.1 = star.1.min(similarity);
    }
    let mut classes = Vec::new();
    for (_, (mut members, similarity)) in stars {
        members.sort_unstable();
        members.dedup();
        let instances: Vec<Instance> = members
            .iter()
            .map(|&unit| {
                let function = function(unit);
                Instance {
                    file: units[unit].0,
                    span: function.span,
                    function: Some(function.qualified_name.clone()),
                    range: function.range,
                    exact: function.exact,
                    tokens: function.tokens(),
                    in_test: files[units[unit].0].is_test || function.in_test,
                }
            })
            .collect();
        classes.push(CloneClass {
            clone_type: 3,
            unit: Unit::Function,
            instances,
            similarity,
            shape: function(members[0]).shape,
        });
    }
    classes
}
