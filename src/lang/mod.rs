//! The language table: everything refactor-ai knows about a language lives in one row here,
//! in that language's module (node kinds) and in `grammars/<lang>/` (queries).
//!
//! Rust code outside `lang/` never names a tree-sitter node kind: the analyses ask the
//! [`Syntax`] of a row what a node means.

mod python;
mod rust;

use std::path::Path;

use tree_sitter::Node;

/// One supported language. Adding a language is one row in [`LANGUAGES`], a module
/// implementing [`Syntax`], and a `grammars/<name>/` folder.
pub(crate) struct Language {
    /// Lowercase name used in output, config sections and rule ids (`python/bare-except`).
    pub(crate) name: &'static str,
    /// File extensions, without the dot.
    pub(crate) extensions: &'static [&'static str],
    pub(crate) grammar: fn() -> tree_sitter::Language,
    /// The smell queries, `grammars/<name>/smells.scm`, embedded in the binary.
    pub(crate) smells: &'static str,
    pub(crate) syntax: &'static (dyn Syntax + Sync),
    /// The default parameter-count threshold (pylint's 5 for Python, clippy's 7 for Rust).
    pub(crate) max_parameters: u32,
    /// What clone detection reads as tokens and statements.
    pub(crate) tokens: TokenKinds,
}

/// Node kinds that matter to clone detection, by name (resolved to kind ids once per
/// grammar). Every other leaf is a token whose kind stands for itself (keywords, operators).
pub(crate) struct TokenKinds {
    /// Read as one token and never descended into: strings, numbers, booleans. Their value
    /// may differ between Type-2 clones.
    pub(crate) literals: &'static [&'static str],
    /// Names that may differ between Type-2 clones.
    pub(crate) identifiers: &'static [&'static str],
    /// Skipped, with everything inside.
    pub(crate) comments: &'static [&'static str],
    /// Statement lists; their named children are the statements clone runs are made of.
    pub(crate) blocks: &'static [&'static str],
    /// Statements that never take part in a clone: imports and other module headers.
    pub(crate) headers: &'static [&'static str],
    /// A statement of this kind whose only child is a literal is documentation (a Python
    /// docstring) and is skipped like a comment.
    pub(crate) docstring_statement: Option<&'static str>,
}

/// The table, sorted by name.
pub(crate) static LANGUAGES: &[Language] = &[
    Language {
        name: "python",
        extensions: &["py"],
        grammar: python::grammar,
        smells: include_str!("../../grammars/python/smells.scm"),
        syntax: &python::Python,
        max_parameters: 5,
        tokens: python::TOKENS,
    },
    Language {
        name: "rust",
        extensions: &["rs"],
        grammar: rust::grammar,
        smells: include_str!("../../grammars/rust/smells.scm"),
        syntax: &rust::Rust,
        max_parameters: 7,
        tokens: rust::TOKENS,
    },
];

impl Language {
    pub(crate) fn for_path(path: &Path) -> Option<&'static Language> {
        let extension = path.extension()?.to_str()?;
        LANGUAGES
            .iter()
            .find(|language| language.extensions.contains(&extension))
    }

    pub(crate) fn by_name(name: &str) -> Option<&'static Language> {
        LANGUAGES.iter().find(|language| language.name == name)
    }

    /// Index of this row in [`LANGUAGES`], for per-language caches.
    pub(crate) fn index(&self) -> usize {
        LANGUAGES
            .iter()
            .position(|language| std::ptr::eq(language, self))
            .unwrap_or(0)
    }
}

/// What a function definition looks like, as found by [`Syntax::function`].
pub(crate) struct FunctionShape<'tree> {
    pub(crate) name: String,
    /// The node that spans the whole definition, from the `def`/`fn` line (not decorators).
    pub(crate) node: Node<'tree>,
    /// The node whose statements are scored (the body block).
    pub(crate) body: Option<Node<'tree>>,
    pub(crate) parameters: u32,
}

/// A child node as seen while iterating its parent's children.
#[derive(Clone, Copy)]
pub(crate) struct Child<'tree, 'field> {
    pub(crate) node: Node<'tree>,
    pub(crate) field: Option<&'field str>,
    pub(crate) previous: Option<Node<'tree>>,
}

/// A class, `impl`, trait or module: a scope for qualified names.
pub(crate) struct Container {
    pub(crate) name: String,
    /// Functions directly inside a type container are methods (`self` calls are recursion).
    pub(crate) is_type: bool,
}

/// A logical operator taking part in a cognitive-complexity boolean sequence.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LogicalOp {
    And,
    Or,
}

/// What a call expression calls, as far as recursion detection needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Callee<'s> {
    /// `name(...)`.
    Bare(&'s [u8]),
    /// `self.name(...)`, `cls.name(...)`, `Self::name(...)`.
    OnSelf(&'s [u8]),
    /// `Type::name(...)`.
    OnType { ty: &'s [u8], name: &'s [u8] },
}

/// The structures that cost cognitive complexity, with how each one scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Construct<'s> {
    /// No increment, children at the same nesting.
    Plain,
    /// `if`, loops, `match`, `except`, ternary, `let ... else`: +1 plus the nesting level.
    Structure(StructureKind),
    /// `else if`/`elif`, `else`, `else` of loops and `try`: a flat +1, body nests.
    Hybrid { is_else_if: bool },
    /// A labelled `break`/`continue`: a flat +1.
    LabelledJump,
    /// A binary logical operator node.
    Logical(LogicalOp),
    /// A nested function, lambda, closure or async block: raises nesting, no increment.
    NestingOnly,
    /// A call, checked for recursion.
    Call(Callee<'s>),
    /// A `return`.
    Return,
    /// A comprehension `for`/`if` clause: free for cognitive, a decision for cyclomatic.
    Clause,
    /// A macro invocation or anything else whose inside is not code we score.
    Opaque,
    /// A class, `impl`, trait or module: scored like `Plain`, but a definition of its own
    /// (see [`Syntax::container`]).
    Container,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StructureKind {
    If,
    Loop,
    /// `match`, with its number of arms (cyclomatic complexity adds arms − 1).
    Match {
        arms: u32,
    },
    Catch,
    Ternary,
    LetElse,
}

/// The part of a language's knowledge that is code rather than data: what node kinds mean.
pub(crate) trait Syntax {
    /// If `node` defines a function (with or without a body), its shape.
    fn function<'tree>(&self, node: Node<'tree>, source: &[u8]) -> Option<FunctionShape<'tree>>;

    /// If `node` is a container that qualifies the names inside it (class, impl, trait, mod),
    /// its name and whether functions directly inside it are methods.
    fn container(&self, node: Node, source: &[u8]) -> Option<Container>;

    /// The separator used in qualified names (`.` for Python, `::` for Rust).
    fn separator(&self) -> &'static str;

    /// How `node` (a child of `parent`) scores for cognitive complexity. The parent is
    /// passed in because `Node::parent` costs a walk from the root.
    fn classify<'s>(&self, node: Node, parent: Option<Node>, source: &'s [u8]) -> Construct<'s>;

    /// Whether `child` of `parent` (in field `field`, right after sibling `previous`) sits
    /// one nesting level deeper than `parent`, given how `parent` was classified. Only asked
    /// for `Structure`, `Hybrid` and `NestingOnly` parents: no other construct nests.
    fn child_nests(&self, parent: Node, construct: &Construct, child: Child) -> bool;

    /// If `node` (a child of `parent`) is a macro invocation in item position whose body
    /// holds items (`cfg_rt! { pub fn spawn() {} }`), the range inside its delimiters, to
    /// be parsed as items of its own. Languages without such macros keep the default.
    fn item_macro_body(
        &self,
        _node: Node,
        _parent: Node,
        _source: &[u8],
    ) -> Option<tree_sitter::Range> {
        None
    }

    /// Whether the file at `path` (relative to the scanned root) is test code as a whole.
    fn is_test_path(&self, path: &Path) -> bool;

    /// Whether `node` is test code inside a file (a `#[cfg(test)]` module, a `#[test]`
    /// function, a `test_*` function); `preceding` are its earlier siblings, nearest last
    /// (where attributes live).
    fn is_test_item(&self, node: Node, preceding: &[Node], source: &[u8]) -> bool;
}

pub(crate) fn node_text<'s>(node: Node, source: &'s [u8]) -> &'s str {
    node.utf8_text(source).unwrap_or("")
}

/// The source bytes of `node`, without the UTF-8 check of [`node_text`].
pub(crate) fn node_bytes<'s>(node: Node, source: &'s [u8]) -> &'s [u8] {
    source.get(node.byte_range()).unwrap_or_default()
}

/// Node kind names by kind id, for one grammar. `Node::kind` measures and validates the C
/// string on every call, which the analyses do several times per node; this is a lookup.
pub(crate) struct KindNames {
    names: std::sync::OnceLock<Vec<Box<str>>>,
    grammar: fn() -> tree_sitter::Language,
}

impl KindNames {
    pub(crate) const fn new(grammar: fn() -> tree_sitter::Language) -> KindNames {
        KindNames {
            names: std::sync::OnceLock::new(),
            grammar,
        }
    }

    pub(crate) fn of(&'static self, node: Node) -> &'static str {
        let names = self.names.get_or_init(|| {
            let grammar = (self.grammar)();
            (0..grammar.node_kind_count())
                .map(|id| {
                    let name = u16::try_from(id)
                        .ok()
                        .and_then(|id| grammar.node_kind_for_id(id))
                        .unwrap_or("");
                    Box::from(name)
                })
                .collect()
        });
        // Ids past the table are tree-sitter's error symbols.
        names
            .get(usize::from(node.kind_id()))
            .map_or("ERROR", |name| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_extensions_are_unique() {
        let names: Vec<_> = LANGUAGES.iter().map(|language| language.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let mut extensions: Vec<_> = LANGUAGES
            .iter()
            .flat_map(|language| language.extensions.iter())
            .collect();
        let count = extensions.len();
        extensions.sort();
        extensions.dedup();
        assert_eq!(extensions.len(), count);
    }

    #[test]
    fn every_grammar_loads() {
        for language in LANGUAGES {
            let mut parser = tree_sitter::Parser::new();
            parser
                .set_language(&(language.grammar)())
                .unwrap_or_else(|error| panic!("{}: {error}", language.name));
        }
    }
}
