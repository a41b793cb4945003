//! From one syntax tree to the units clone detection compares: every function, and the
//! statements of every block, each with a hash of its token kinds (its shape: what Type-2
//! clones share) and of its token texts (what Type-1 clones share).
//!
//! Tokens are the tree's leaves, except that literals are one token each and comments and
//! docstrings are no tokens at all, so layout and comments never matter.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Tree};

use crate::analysis::FunctionReport;
use crate::lang::{LANGUAGES, Language};

/// What one file offers to clone detection. Stored in the result cache.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct CloneUnits {
    pub(crate) functions: Vec<FunctionUnit>,
    /// The statements of each block, in order.
    pub(crate) blocks: Vec<Vec<Statement>>,
}

/// Where a unit is, in the file's own terms (1-based lines and columns, 0-based bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Span {
    pub(crate) start_byte: u32,
    pub(crate) end_byte: u32,
    pub(crate) start_line: u32,
    pub(crate) end_line: u32,
    pub(crate) start_column: u32,
    pub(crate) end_column: u32,
}

impl Span {
    fn of(node: Node) -> Span {
        let to_u32 = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        Span {
            start_byte: to_u32(node.start_byte()),
            end_byte: to_u32(node.end_byte()),
            start_line: to_u32(node.start_position().row + 1),
            end_line: to_u32(node.end_position().row + 1),
            start_column: to_u32(node.start_position().column + 1),
            end_column: to_u32(node.end_position().column + 1),
        }
    }

    pub(crate) fn lines(&self) -> u32 {
        self.end_line.saturating_sub(self.start_line) + 1
    }

    pub(crate) fn contains(&self, other: &Span) -> bool {
        self.start_byte <= other.start_byte && other.end_byte <= self.end_byte
    }
}

/// One statement of a block.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Statement {
    pub(crate) span: Span,
    /// Hash of the token kinds; 0 for a statement that never takes part in a clone (an
    /// import, or one with syntax errors).
    pub(crate) shape: u64,
    /// Hash of the token kinds and texts.
    pub(crate) exact: u64,
    pub(crate) tokens: u32,
    pub(crate) literals: u32,
    /// A statement of the file's (or macro body's) outermost block: module-level code.
    pub(crate) top_level: bool,
}

/// One function or method.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FunctionUnit {
    pub(crate) qualified_name: String,
    pub(crate) span: Span,
    pub(crate) shape: u64,
    pub(crate) exact: u64,
    pub(crate) literals: u32,
    /// The token kinds in order (the normalized token stream near-miss clones are aligned
    /// on).
    pub(crate) kinds: Vec<u16>,
    /// A hash of each token's kind and text, in order (how much of the actual code two
    /// near-miss copies share).
    pub(crate) texts: Vec<u32>,
    /// The exact hashes of every statement inside, nested ones included, sorted and
    /// deduplicated (what near-miss candidates are found by: copies share statements).
    pub(crate) statements: Vec<u64>,
    /// How many statements are inside, nested ones included (a one-statement function, a
    /// stub or a delegation, is never worth a helper of its own).
    pub(crate) statement_count: u32,
}

impl FunctionUnit {
    pub(crate) fn tokens(&self) -> u32 {
        u32::try_from(self.kinds.len()).unwrap_or(u32::MAX)
    }
}

/// How a node kind takes part in tokenizing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Plain,
    Literal,
    Identifier,
    Comment,
}

/// Per kind id: its class, whether it is a block, whether it is a module header.
struct KindTable {
    class: Vec<Class>,
    block: Vec<bool>,
    header: Vec<bool>,
    docstring_statement: Option<u16>,
}

fn kind_table(language: &'static Language) -> &'static KindTable {
    static TABLES: OnceLock<Vec<OnceLock<KindTable>>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| LANGUAGES.iter().map(|_| OnceLock::new()).collect());
    tables[language.index()].get_or_init(|| {
        let grammar = (language.grammar)();
        let kinds = &language.tokens;
        let count = grammar.node_kind_count();
        let mut table = KindTable {
            class: vec![Class::Plain; count],
            block: vec![false; count],
            header: vec![false; count],
            docstring_statement: None,
        };
        for id in 0..count {
            let Ok(id16) = u16::try_from(id) else { break };
            if !grammar.node_kind_is_named(id16) {
                continue;
            }
            let name = grammar.node_kind_for_id(id16).unwrap_or("");
            table.class[id] = if kinds.literals.contains(&name) {
                Class::Literal
            } else if kinds.identifiers.contains(&name) {
                Class::Identifier
            } else if kinds.comments.contains(&name) {
                Class::Comment
            } else {
                Class::Plain
            };
            table.block[id] = kinds.blocks.contains(&name);
            table.header[id] = kinds.headers.contains(&name);
            if kinds.docstring_statement == Some(name) {
                table.docstring_statement = Some(id16);
            }
        }
        table
    })
}

impl KindTable {
    fn class(&self, node: Node) -> Class {
        self.class
            .get(usize::from(node.kind_id()))
            .copied()
            .unwrap_or(Class::Plain)
    }

    fn is(&self, flags: &[bool], node: Node) -> bool {
        flags
            .get(usize::from(node.kind_id()))
            .copied()
            .unwrap_or(false)
    }

    /// A docstring: a statement that is nothing but a string.
    fn is_docstring(&self, node: Node) -> bool {
        self.docstring_statement == Some(node.kind_id())
            && node.named_child_count() == 1
            && node
                .named_child(0)
                .is_some_and(|child| self.class(child) == Class::Literal)
    }
}

/// The hash step used for shapes and texts (FxHash's: fast, and good enough for keys that
/// are verified before anything is reported).
pub(crate) fn mix(hash: u64, value: u64) -> u64 {
    (hash.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The tokens of a function unit as [`Token`]s (kinds and text hashes as stored; no
/// positions), so that copies can be compared without parsing again.
pub(crate) fn function_tokens(language: &'static Language, function: &FunctionUnit) -> Vec<Token> {
    let table = kind_table(language);
    function
        .kinds
        .iter()
        .zip(&function.texts)
        .map(|(&kind, &text)| {
            let class = table
                .class
                .get(usize::from(kind))
                .copied()
                .unwrap_or(Class::Plain);
            Token {
                kind,
                text: u64::from(text),
                is_literal: class == Class::Literal,
                is_identifier: class == Class::Identifier,
                start_byte: 0,
            }
        })
        .collect()
}

/// One token: its kind, and a hash of its text.
#[derive(Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: u16,
    pub(crate) text: u64,
    pub(crate) is_literal: bool,
    pub(crate) is_identifier: bool,
    pub(crate) start_byte: u32,
}

/// The leaves of `root` as tokens, in order.
pub(crate) fn tokens(language: &'static Language, root: Node, source: &[u8]) -> Vec<Token> {
    let mut extractor = Extractor::new(language, &[]);
    extractor.walk(root, source, false);
    extractor.tokens
}

/// Adds the units of `tree` to `units`. `functions` are the file's measured functions;
/// those inside `tree` become function units.
pub(crate) fn extract(
    language: &'static Language,
    tree: &Tree,
    source: &[u8],
    functions: &[FunctionReport],
    units: &mut CloneUnits,
) {
    let mut extractor = Extractor::new(language, functions);
    extractor.walk(tree.root_node(), source, true);
    units.functions.extend(extractor.functions);
    units.blocks.extend(
        extractor
            .blocks
            .into_iter()
            .filter(|block| !block.is_empty()),
    );
}

/// What is open at one depth of the walk.
#[derive(Clone, Copy, Default)]
struct Frame {
    is_block: bool,
    /// This node is a block: its index in `blocks` (when units are recorded).
    block: Option<usize>,
    /// This node is a statement of that block, starting at this token.
    statement: Option<(usize, usize)>,
    /// Function units made before this statement started: a statement that defines
    /// functions is not part of a run (each function is a unit of its own).
    functions_before: usize,
    top_level: bool,
    /// This node is that measured function, starting at this token and this statement.
    function: Option<(usize, usize, usize)>,
    /// The statement or function has syntax errors or is a header: it is not a unit.
    excluded: bool,
}

struct Extractor<'f> {
    table: &'static KindTable,
    functions_in: &'f [FunctionReport],
    /// (start byte, end byte, index into `functions_in`), sorted.
    function_spans: Vec<(usize, usize, usize)>,
    tokens: Vec<Token>,
    blocks: Vec<Vec<Statement>>,
    functions: Vec<FunctionUnit>,
    /// Exact hashes of every statement closed so far, in closing order.
    closed: Vec<u64>,
}

impl<'f> Extractor<'f> {
    fn new(language: &'static Language, functions: &'f [FunctionReport]) -> Extractor<'f> {
        let mut function_spans: Vec<(usize, usize, usize)> = functions
            .iter()
            .enumerate()
            .map(|(index, function)| {
                (
                    function.location.start_byte,
                    function.location.end_byte,
                    index,
                )
            })
            .collect();
        function_spans.sort_unstable();
        Extractor {
            table: kind_table(language),
            functions_in: functions,
            function_spans,
            tokens: Vec::new(),
            blocks: Vec::new(),
            functions: Vec::new(),
            closed: Vec::new(),
        }
    }

    fn function_at(&self, node: Node) -> Option<usize> {
        let key = (node.start_byte(), node.end_byte());
        let at = self
            .function_spans
            .partition_point(|&(start, end, _)| (start, end) < key);
        self.function_spans
            .get(at)
            .filter(|&&(start, end, _)| (start, end) == key)
            .map(|&(_, _, index)| index)
    }

    fn push_token(&mut self, node: Node, class: Class, source: &[u8]) {
        if node.is_missing() || node.start_byte() == node.end_byte() {
            return;
        }
        let text = source.get(node.byte_range()).unwrap_or_default();
        self.tokens.push(Token {
            kind: node.kind_id(),
            text: hash_bytes(text),
            is_literal: class == Class::Literal,
            is_identifier: class == Class::Identifier,
            start_byte: u32::try_from(node.start_byte()).unwrap_or(u32::MAX),
        });
    }

    /// Walks `root` without recursion. With `units`, also records statements and
    /// functions.
    fn walk(&mut self, root: Node, source: &[u8], units: bool) {
        let table = self.table;
        let mut frames: Vec<Frame> = Vec::new();
        let mut cursor = root.walk();
        'walk: loop {
            let node = cursor.node();
            let in_block = frames.last().is_some_and(|frame| frame.is_block);
            let parent_block = frames.last().and_then(|frame| frame.block);
            let class = table.class(node);
            let skip = class == Class::Comment || (in_block && table.is_docstring(node));
            if !skip {
                if class == Class::Literal || node.child_count() == 0 {
                    self.push_token(node, class, source);
                    if let (Some(block), true) = (parent_block, units) {
                        // A one-token statement (rare): recorded, never a clone on its own.
                        let statement = self.statement(
                            node,
                            self.tokens.len().saturating_sub(1),
                            true,
                            frames.len() == 1,
                        );
                        self.blocks[block].push(statement);
                    }
                } else {
                    let mut frame = Frame {
                        is_block: table.is(&table.block, node),
                        ..Frame::default()
                    };
                    if units {
                        if frame.is_block {
                            frame.block = Some(self.blocks.len());
                            self.blocks.push(Vec::new());
                        } else if let Some(function) = self.function_at(node) {
                            frame.function = Some((function, self.tokens.len(), self.closed.len()));
                        }
                        if let Some(block) = parent_block {
                            frame.statement = Some((block, self.tokens.len()));
                            frame.top_level = frames.len() == 1;
                            frame.functions_before = self.functions.len();
                            frame.excluded = node.has_error() || table.is(&table.header, node);
                        }
                    }
                    frames.push(frame);
                    // A node with children always has a first child.
                    if cursor.goto_first_child() {
                        continue 'walk;
                    }
                    frames.pop();
                }
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    break 'walk;
                }
                let Some(frame) = frames.pop() else {
                    break 'walk;
                };
                self.close(cursor.node(), frame);
            }
        }
    }

    fn statement(&self, node: Node, start: usize, excluded: bool, top_level: bool) -> Statement {
        let tokens = &self.tokens[start.min(self.tokens.len())..];
        let (shape, exact) = hashes(tokens);
        Statement {
            span: Span::of(node),
            shape: if excluded || tokens.is_empty() {
                0
            } else {
                shape.max(1)
            },
            exact,
            tokens: u32::try_from(tokens.len()).unwrap_or(u32::MAX),
            literals: count_literals(tokens),
            top_level,
        }
    }

    fn close(&mut self, node: Node, frame: Frame) {
        if let Some((index, start, first_closed)) = frame.function
            && !node.has_error()
        {
            let tokens = &self.tokens[start.min(self.tokens.len())..];
            let (shape, exact) = hashes(tokens);
            let mut statements = self.closed[first_closed.min(self.closed.len())..].to_vec();
            let statement_count = u32::try_from(statements.len()).unwrap_or(u32::MAX);
            statements.sort_unstable();
            statements.dedup();
            self.functions.push(FunctionUnit {
                qualified_name: self.functions_in[index].qualified_name.clone(),
                span: Span::of(node),
                shape,
                exact,
                literals: count_literals(tokens),
                kinds: tokens.iter().map(|token| token.kind).collect(),
                texts: tokens
                    .iter()
                    .map(|token| mix(u64::from(token.kind), token.text) as u32)
                    .collect(),
                statements,
                statement_count,
            });
        }
        if let Some((block, start)) = frame.statement {
            // A statement that is or holds a function is not part of a run: each function
            // is a unit of its own (functions close before the statements around them).
            let defines_functions = self.functions.len() > frame.functions_before;
            let excluded = frame.excluded || defines_functions;
            let statement = self.statement(node, start, excluded, frame.top_level);
            if statement.shape != 0 {
                self.closed.push(statement.exact);
            }
            self.blocks[block].push(statement);
        }
    }
}

fn hashes(tokens: &[Token]) -> (u64, u64) {
    let mut shape = 0u64;
    let mut exact = 0u64;
    for token in tokens {
        shape = mix(shape, u64::from(token.kind));
        exact = mix(mix(exact, u64::from(token.kind)), token.text);
    }
    (shape, exact)
}

fn count_literals(tokens: &[Token]) -> u32 {
    let count = tokens.iter().filter(|token| token.is_literal).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}
