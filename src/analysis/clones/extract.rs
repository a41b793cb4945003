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
    /// The file's token stream (each tree's in turn): token kinds ...
    #[serde(with = "hex16")]
    pub(crate) kinds: Vec<u16>,
    /// ... and a hash of each token's kind and text.
    #[serde(with = "hex32")]
    pub(crate) texts: Vec<u32>,
    pub(crate) functions: Vec<FunctionUnit>,
    /// The statements of each block, in order.
    pub(crate) blocks: Vec<Vec<Statement>>,
}

impl CloneUnits {
    /// The token kinds of a unit: the normalized token stream (what Type-2 clones share
    /// and near-miss clones are aligned on).
    pub(crate) fn kinds(&self, range: TokenRange) -> &[u16] {
        self.kinds
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
    }

    /// The token texts of a unit (hashes of kind and text).
    pub(crate) fn texts(&self, range: TokenRange) -> &[u32] {
        self.texts
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
    }
}

/// A unit's tokens: a range of its file's token stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[u32; 2]", from = "[u32; 2]")]
pub(crate) struct TokenRange {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl From<TokenRange> for [u32; 2] {
    fn from(range: TokenRange) -> [u32; 2] {
        [range.start, range.end]
    }
}

impl From<[u32; 2]> for TokenRange {
    fn from([start, end]: [u32; 2]) -> TokenRange {
        TokenRange { start, end }
    }
}

impl TokenRange {
    pub(crate) fn len(&self) -> u32 {
        self.end.saturating_sub(self.start)
    }
}

/// Token streams are stored as hex strings: a fraction of the size of JSON numbers and
/// many times faster to read back.
mod hex16 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        values: &[u16],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::to_hex(
            values.iter().map(|&value| u32::from(value)),
            4,
        ))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u16>, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        super::from_hex(text, 4)
            .map(|values| values.into_iter().map(|value| value as u16).collect())
            .ok_or_else(|| serde::de::Error::custom("not a hex token stream"))
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        values: &[u32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::to_hex(values.iter().copied(), 8))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u32>, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        super::from_hex(text, 8).ok_or_else(|| serde::de::Error::custom("not a hex token stream"))
    }
}

fn to_hex(values: impl ExactSizeIterator<Item = u32>, digits: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(values.len() * digits);
    for value in values {
        for shift in (0..digits).rev() {
            out.push(DIGITS[((value >> (shift * 4)) & 0xf) as usize]);
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn from_hex(text: &str, digits: usize) -> Option<Vec<u32>> {
    if !text.len().is_multiple_of(digits) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(digits)
        .map(|chunk| {
            chunk.iter().try_fold(0u32, |value, &byte| {
                let digit = (byte as char).to_digit(16)?;
                Some(value << 4 | digit)
            })
        })
        .collect()
}

/// Where a unit is, in the file's own terms (1-based lines and columns, 0-based bytes).
/// Stored as an array: the cache holds one per statement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[u32; 6]", from = "[u32; 6]")]
pub(crate) struct Span {
    pub(crate) start_byte: u32,
    pub(crate) end_byte: u32,
    pub(crate) start_line: u32,
    pub(crate) end_line: u32,
    pub(crate) start_column: u32,
    pub(crate) end_column: u32,
}

impl From<Span> for [u32; 6] {
    fn from(span: Span) -> [u32; 6] {
        [
            span.start_byte,
            span.end_byte,
            span.start_line,
            span.end_line,
            span.start_column,
            span.end_column,
        ]
    }
}

impl From<[u32; 6]> for Span {
    fn from(row: [u32; 6]) -> Span {
        let [
            start_byte,
            end_byte,
            start_line,
            end_line,
            start_column,
            end_column,
        ] = row;
        Span {
            start_byte,
            end_byte,
            start_line,
            end_line,
            start_column,
            end_column,
        }
    }
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

    /// The span as a finding's location in the file at `path`.
    pub(crate) fn location(&self, path: &str) -> crate::finding::Location {
        crate::finding::Location {
            path: path.to_string(),
            start_line: self.start_line,
            end_line: self.end_line,
            start_column: self.start_column,
            end_column: self.end_column,
            start_byte: self.start_byte as usize,
            end_byte: self.end_byte as usize,
        }
    }

    pub(crate) fn lines(&self) -> u32 {
        self.end_line.saturating_sub(self.start_line) + 1
    }

    pub(crate) fn contains(&self, other: &Span) -> bool {
        self.start_byte <= other.start_byte && other.end_byte <= self.end_byte
    }
}

/// One statement of a block. Stored as an array (see [`StatementRow`]).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(into = "StatementRow", from = "StatementRow")]
pub(crate) struct Statement {
    pub(crate) span: Span,
    pub(crate) range: TokenRange,
    /// Hash of the token kinds; 0 for a statement that never takes part in a clone (an
    /// import, or one with syntax errors).
    pub(crate) shape: u64,
    /// Hash of the token kinds and texts.
    pub(crate) exact: u64,
    pub(crate) literals: u32,
    /// Not inside any function: module-level or class-level code (declarations and data
    /// tables more often than logic).
    pub(crate) outside_functions: bool,
    /// Inside a test item (`#[cfg(test)] mod`, `#[test] fn`, `def test_*`, `class Test*`).
    pub(crate) in_test: bool,
}

/// One function or method.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FunctionUnit {
    pub(crate) qualified_name: String,
    pub(crate) span: Span,
    pub(crate) shape: u64,
    pub(crate) exact: u64,
    pub(crate) literals: u32,
    pub(crate) range: TokenRange,
    /// The exact hashes of every statement inside, nested ones included, sorted and
    /// deduplicated (what near-miss candidates are found by: copies share statements).
    pub(crate) statements: Vec<u64>,
    /// How many statements are inside, nested ones included (a one-statement function, a
    /// stub or a delegation, is never worth a helper of its own).
    pub(crate) statement_count: u32,
    /// A test item, or inside one.
    pub(crate) in_test: bool,
}

impl FunctionUnit {
    pub(crate) fn tokens(&self) -> u32 {
        self.range.len()
    }
}

/// A [`Statement`] as stored: span, tokens, shape, exact, literals, top level.
#[derive(Serialize, Deserialize)]
struct StatementRow(Span, TokenRange, u64, u64, u32, bool, bool);

impl From<Statement> for StatementRow {
    fn from(statement: Statement) -> StatementRow {
        StatementRow(
            statement.span,
            statement.range,
            statement.shape,
            statement.exact,
            statement.literals,
            statement.outside_functions,
            statement.in_test,
        )
    }
}

impl From<StatementRow> for Statement {
    fn from(
        StatementRow(span, range, shape, exact, literals, outside_functions, in_test): StatementRow,
    ) -> Statement {
        Statement {
            span,
            range,
            shape,
            exact,
            literals,
            outside_functions,
            in_test,
        }
    }
}

impl Statement {
    pub(crate) fn tokens(&self) -> u32 {
        self.range.len()
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

/// The tokens of `range` in `units`, with what each is (for comparing copies token by
/// token).
pub(crate) fn tokens_in(
    language: &'static Language,
    units: &CloneUnits,
    range: TokenRange,
) -> Vec<Token> {
    let table = kind_table(language);
    units
        .kinds(range)
        .iter()
        .zip(units.texts(range))
        .map(|(&kind, &text)| {
            let class = table
                .class
                .get(usize::from(kind))
                .copied()
                .unwrap_or(Class::Plain);
            Token {
                kind,
                text,
                is_literal: class == Class::Literal,
                is_identifier: class == Class::Identifier,
            }
        })
        .collect()
}

/// One token: its kind, and a hash of its kind and text.
#[derive(Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: u16,
    pub(crate) text: u32,
    pub(crate) is_literal: bool,
    pub(crate) is_identifier: bool,
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
    let base = u32::try_from(units.kinds.len()).unwrap_or(u32::MAX);
    let mut extractor = Extractor::new(language, functions, base);
    extractor.walk(tree.root_node(), source);
    units
        .kinds
        .extend(extractor.tokens.iter().map(|token| token.kind));
    units
        .texts
        .extend(extractor.tokens.iter().map(|token| token.text));
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
    /// This node is a block: its index in `blocks`.
    block: Option<usize>,
    /// This node is a statement of that block, starting at this token.
    statement: Option<(usize, usize)>,
    /// Function units made before this statement started: a statement that defines
    /// functions is not part of a run (each function is a unit of its own).
    functions_before: usize,
    outside_functions: bool,
    /// This node is that measured function, starting at this token and this statement.
    function: Option<(usize, usize, usize)>,
    /// The statement or function has syntax errors or is a header: it is not a unit.
    excluded: bool,
    /// This node is test code (a test item or inside one).
    in_test: bool,
    /// This node is a function or inside one.
    in_function: bool,
}

struct Extractor<'f> {
    table: &'static KindTable,
    syntax: &'static (dyn crate::lang::Syntax + Sync),
    /// Where this tree's tokens start in the file's token stream.
    base: u32,
    functions_in: &'f [FunctionReport],
    /// (start byte, end byte, index into `functions_in`), sorted.
    function_spans: Vec<(usize, usize, usize)>,
    tokens: Vec<Token>,
    blocks: Vec<Vec<Statement>>,
    functions: Vec<FunctionUnit>,
    prefix: Prefix,
    /// Exact hashes of every statement closed so far, in closing order.
    closed: Vec<u64>,
}

impl<'f> Extractor<'f> {
    fn new(
        language: &'static Language,
        functions: &'f [FunctionReport],
        base: u32,
    ) -> Extractor<'f> {
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
            syntax: language.syntax,
            base,
            functions_in: functions,
            function_spans,
            tokens: Vec::new(),
            blocks: Vec::new(),
            functions: Vec::new(),
            prefix: Prefix::default(),
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
        let kind = node.kind_id();
        let token = Token {
            kind,
            text: mix(u64::from(kind), hash_bytes(text)) as u32,
            is_literal: class == Class::Literal,
            is_identifier: class == Class::Identifier,
        };
        self.prefix.push(&token);
        self.tokens.push(token);
    }

    /// Walks `root` without recursion, recording tokens, statements and functions.
    fn walk(&mut self, root: Node, source: &[u8]) {
        let table = self.table;
        let mut frames: Vec<Frame> = Vec::new();
        // The statements seen so far in each open block (where Rust attributes live).
        let mut siblings: Vec<Vec<Node>> = Vec::new();
        let mut cursor = root.walk();
        'walk: loop {
            let node = cursor.node();
            let in_block = frames.last().is_some_and(|frame| frame.is_block);
            let parent_block = frames.last().and_then(|frame| frame.block);
            let mut in_test = frames.last().is_some_and(|frame| frame.in_test);
            let in_function = frames.last().is_some_and(|frame| frame.in_function);
            if in_block && let Some(preceding) = siblings.last_mut() {
                in_test = in_test || self.syntax.is_test_item(node, preceding, source);
                preceding.push(node);
            }
            let class = table.class(node);
            let skip = class == Class::Comment || (in_block && table.is_docstring(node));
            if !skip {
                if class == Class::Literal || node.child_count() == 0 {
                    self.push_token(node, class, source);
                    if let Some(block) = parent_block {
                        // A one-token statement (rare): recorded, never a clone on its own.
                        let statement = self.statement(
                            node,
                            self.tokens.len().saturating_sub(1),
                            true,
                            !in_function,
                            in_test,
                        );
                        self.blocks[block].push(statement);
                    }
                } else {
                    let mut frame = Frame {
                        is_block: table.is(&table.block, node),
                        in_test,
                        in_function,
                        ..Frame::default()
                    };
                    if frame.is_block {
                        frame.block = Some(self.blocks.len());
                        self.blocks.push(Vec::new());
                        siblings.push(Vec::new());
                    } else if let Some(function) = self.function_at(node) {
                        frame.function = Some((function, self.tokens.len(), self.closed.len()));
                        frame.in_function = true;
                    }
                    if let Some(block) = parent_block {
                        frame.statement = Some((block, self.tokens.len()));
                        frame.outside_functions = !in_function;
                        frame.functions_before = self.functions.len();
                        // Imports, and class or `impl` definitions (a run of declarations
                        // is not logic to extract; their methods are units of their own).
                        frame.excluded = node.has_error()
                            || table.is(&table.header, node)
                            || self.defines_container(node, source);
                    }
                    frames.push(frame);
                    // A node with children always has a first child.
                    if cursor.goto_first_child() {
                        continue 'walk;
                    }
                    if frames.pop().is_some_and(|frame| frame.is_block) {
                        siblings.pop();
                    }
                }
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    break 'walk;
                }
                let Some(frame) = frames.pop() else {
                    break 'walk;
                };
                if frame.is_block {
                    siblings.pop();
                }
                self.close(cursor.node(), frame);
            }
        }
    }

    fn range(&self, start: usize) -> TokenRange {
        let to_u32 = |index: usize| {
            self.base
                .saturating_add(u32::try_from(index).unwrap_or(u32::MAX))
        };
        TokenRange {
            start: to_u32(start.min(self.tokens.len())),
            end: to_u32(self.tokens.len()),
        }
    }

    /// A class, `impl`, trait or module definition, decorated or not (a decorator wraps
    /// the definition, its last child).
    fn defines_container(&self, node: Node, source: &[u8]) -> bool {
        self.syntax.container(node, source).is_some()
            || node
                .named_child(u32::try_from(node.named_child_count().saturating_sub(1)).unwrap_or(0))
                .is_some_and(|last| self.syntax.container(last, source).is_some())
    }

    fn statement(
        &self,
        node: Node,
        start: usize,
        excluded: bool,
        outside_functions: bool,
        in_test: bool,
    ) -> Statement {
        let (shape, exact, literals) = self.prefix.range(start, self.tokens.len());
        Statement {
            span: Span::of(node),
            range: self.range(start),
            shape: if excluded || start >= self.tokens.len() {
                0
            } else {
                shape.max(1)
            },
            exact,
            literals,
            outside_functions,
            in_test,
        }
    }

    fn close(&mut self, node: Node, frame: Frame) {
        if let Some((index, start, first_closed)) = frame.function
            && !node.has_error()
        {
            let (shape, exact, literals) = self.prefix.range(start, self.tokens.len());
            let mut statements = self.closed[first_closed.min(self.closed.len())..].to_vec();
            let statement_count = u32::try_from(statements.len()).unwrap_or(u32::MAX);
            statements.sort_unstable();
            statements.dedup();
            self.functions.push(FunctionUnit {
                qualified_name: self.functions_in[index].qualified_name.clone(),
                span: Span::of(node),
                shape,
                exact,
                literals,
                range: self.range(start),
                statements,
                statement_count,
                in_test: frame.in_test,
            });
        }
        if let Some((block, start)) = frame.statement {
            // A statement that is or holds a function is not part of a run: each function
            // is a unit of its own (functions close before the statements around them).
            let defines_functions = self.functions.len() > frame.functions_before;
            let excluded = frame.excluded || defines_functions;
            let statement = self.statement(
                node,
                start,
                excluded,
                frame.outside_functions,
                frame.in_test,
            );
            if statement.shape != 0 {
                self.closed.push(statement.exact);
            }
            self.blocks[block].push(statement);
        }
    }
}

/// Hashes and literal counts of any range of the token stream in constant time, so that
/// nested statements cost no more to hash than flat ones (a 5,000-deep tree would otherwise
/// rehash its tokens 5,000 times). Polynomial prefix hashes modulo the Mersenne prime
/// 2^61 − 1.
#[derive(Default)]
struct Prefix {
    shape: Vec<u64>,
    exact: Vec<u64>,
    literals: Vec<u32>,
    powers: Vec<u64>,
}

const MODULUS: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1d8e_4e27_c47d_124f % MODULUS;

fn mul_mod(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    let folded = (product as u64 & MODULUS) + (product >> 61) as u64;
    if folded >= MODULUS {
        folded - MODULUS
    } else {
        folded
    }
}

fn add_mod(a: u64, b: u64) -> u64 {
    let sum = a + b;
    if sum >= MODULUS { sum - MODULUS } else { sum }
}

impl Prefix {
    fn push(&mut self, token: &Token) {
        if self.shape.is_empty() {
            self.shape.push(0);
            self.exact.push(0);
            self.literals.push(0);
            self.powers.push(1);
        }
        let last = self.shape.len() - 1;
        let step = |prefix: u64, value: u64| add_mod(mul_mod(prefix, BASE), value);
        self.shape
            .push(step(self.shape[last], u64::from(token.kind) + 1));
        self.exact
            .push(step(self.exact[last], u64::from(token.text) + 1));
        self.literals
            .push(self.literals[last] + u32::from(token.is_literal));
        self.powers.push(mul_mod(self.powers[last], BASE));
    }

    /// (shape, exact, literals) of tokens `start..end`.
    fn range(&self, start: usize, end: usize) -> (u64, u64, u32) {
        if end <= start || end >= self.shape.len() + usize::from(self.shape.is_empty()) {
            return (0, 0, 0);
        }
        let hash = |prefix: &[u64]| {
            add_mod(
                prefix[end],
                MODULUS - mul_mod(prefix[start], self.powers[end - start]),
            )
        };
        (
            hash(&self.shape),
            hash(&self.exact),
            self.literals[end] - self.literals[start],
        )
    }
}
