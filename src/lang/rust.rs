//! Rust node kinds (tree-sitter-rust 0.24) and what they mean to the analyses.
//!
//! Conventions beyond the Cognitive Complexity paper (also in README):
//! - `if let` and let chains are `if`, `while let` is `while`, `loop` counts like `while`;
//! - `let PATTERN = value else { ... };` is +1 plus nesting (it is a refutable match with a
//!   diverging arm), and its `else` block nests;
//! - `async` blocks and closures raise nesting with no increment of their own, like lambdas;
//! - a let chain (`if let Some(x) = a && b`) is one `&&` sequence;
//! - match guards, `?`, `unsafe` and plain blocks are free; macro bodies are not scored.

use std::path::Path;

use tree_sitter::Node;

use super::{
    Callee, Child, Construct, Container, FunctionShape, KindNames, LogicalOp, StructureKind,
    Syntax, TokenKinds, node_bytes, node_text,
};

pub(super) fn grammar() -> tree_sitter::Language {
    tree_sitter_rust::LANGUAGE.into()
}

static KINDS: KindNames = KindNames::new(grammar);

pub(super) const TOKENS: TokenKinds = TokenKinds {
    literals: &[
        "string_literal",
        "raw_string_literal",
        "char_literal",
        "integer_literal",
        "float_literal",
        "boolean_literal",
    ],
    identifiers: &[
        "identifier",
        "type_identifier",
        "field_identifier",
        "shorthand_field_identifier",
    ],
    comments: &["line_comment", "block_comment"],
    blocks: &["source_file", "block", "declaration_list"],
    headers: &["use_declaration", "extern_crate_declaration"],
    docstring_statement: None,
};

fn kind(node: Node) -> &'static str {
    KINDS.of(node)
}

pub(crate) struct Rust;

impl Syntax for Rust {
    fn function<'tree>(&self, node: Node<'tree>, source: &[u8]) -> Option<FunctionShape<'tree>> {
        if kind(node) != "function_item" {
            return None;
        }
        let name = node_text(node.child_by_field_name("name")?, source).to_string();
        let parameters = node
            .child_by_field_name("parameters")
            .map_or(0, count_parameters);
        Some(FunctionShape {
            name,
            node,
            body: node.child_by_field_name("body"),
            parameters,
        })
    }

    fn container(&self, node: Node, source: &[u8]) -> Option<Container> {
        let (name, is_type) = match kind(node) {
            "impl_item" => (type_name(node.child_by_field_name("type")?, source), true),
            "trait_item" => (node_text(node.child_by_field_name("name")?, source), true),
            "mod_item" => (node_text(node.child_by_field_name("name")?, source), false),
            _ => return None,
        };
        Some(Container {
            name: name.to_string(),
            is_type,
        })
    }

    fn separator(&self) -> &'static str {
        "::"
    }

    fn classify<'s>(&self, node: Node, parent: Option<Node>, source: &'s [u8]) -> Construct<'s> {
        match kind(node) {
            "if_expression" => {
                if parent.is_some_and(|parent| kind(parent) == "else_clause") {
                    Construct::Hybrid { is_else_if: true }
                } else {
                    Construct::Structure(StructureKind::If)
                }
            }
            // `else if` is scored on the inner `if_expression`; only a final `else` counts here.
            "else_clause" => {
                if node
                    .named_child(0)
                    .is_some_and(|child| kind(child) == "block")
                {
                    Construct::Hybrid { is_else_if: false }
                } else {
                    Construct::Plain
                }
            }
            "while_expression" | "loop_expression" | "for_expression" => {
                Construct::Structure(StructureKind::Loop)
            }
            "match_expression" => Construct::Structure(StructureKind::Match {
                arms: count_arms(node),
            }),
            "let_declaration" if node.child_by_field_name("alternative").is_some() => {
                Construct::Structure(StructureKind::LetElse)
            }
            "binary_expression" => match node.child_by_field_name("operator").map(kind) {
                Some("&&") => Construct::Logical(LogicalOp::And),
                Some("||") => Construct::Logical(LogicalOp::Or),
                _ => Construct::Plain,
            },
            "let_chain" => Construct::Logical(LogicalOp::And),
            "break_expression" | "continue_expression" => {
                let mut cursor = node.walk();
                let labelled = node
                    .named_children(&mut cursor)
                    .any(|child| kind(child) == "label");
                if labelled {
                    Construct::LabelledJump
                } else {
                    Construct::Plain
                }
            }
            "function_item" | "closure_expression" | "async_block" | "gen_block" => {
                Construct::NestingOnly
            }
            "return_expression" => Construct::Return,
            "call_expression" => callee(node, source).map_or(Construct::Plain, Construct::Call),
            "macro_invocation" | "attribute_item" | "inner_attribute_item" => Construct::Opaque,
            "impl_item" | "trait_item" | "mod_item" => Construct::Container,
            _ => Construct::Plain,
        }
    }

    fn child_nests(&self, parent: Node, construct: &Construct, child: Child) -> bool {
        let field = child.field;
        match construct {
            Construct::Structure(StructureKind::If) | Construct::Hybrid { is_else_if: true } => {
                field == Some("consequence")
            }
            Construct::Hybrid { is_else_if: false } => kind(child.node) == "block",
            Construct::Structure(StructureKind::Loop | StructureKind::Match { .. }) => {
                field == Some("body")
            }
            Construct::Structure(StructureKind::LetElse) => field == Some("alternative"),
            Construct::NestingOnly => match kind(parent) {
                "function_item" | "closure_expression" => field == Some("body"),
                _ => kind(child.node) == "block",
            },
            _ => false,
        }
    }

    fn item_macro_body(
        &self,
        node: Node,
        parent: Node,
        source: &[u8],
    ) -> Option<tree_sitter::Range> {
        if kind(node) != "macro_invocation"
            || !matches!(kind(parent), "source_file" | "declaration_list")
        {
            return None;
        }
        let mut cursor = node.walk();
        let body = node
            .named_children(&mut cursor)
            .find(|child| kind(*child) == "token_tree")?;
        let (start, end) = (body.start_byte(), body.end_byte());
        // Only `{ ... }` and `( ... )` bodies hold items; `[...]` is an expression list.
        let delimited = matches!(
            (
                source.get(start),
                end.checked_sub(1).and_then(|last| source.get(last))
            ),
            (Some(b'{'), Some(b'}')) | (Some(b'('), Some(b')'))
        );
        if !delimited || end - start < 2 {
            return None;
        }
        let (first, last) = (body.start_position(), body.end_position());
        Some(tree_sitter::Range {
            start_byte: start + 1,
            end_byte: end - 1,
            start_point: tree_sitter::Point::new(first.row, first.column + 1),
            end_point: tree_sitter::Point::new(last.row, last.column.saturating_sub(1)),
        })
    }

    fn is_test_path(&self, path: &Path) -> bool {
        let file_name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let in_test_dir = path.parent().is_some_and(|parent| {
            parent
                .components()
                .any(|component| component.as_os_str() == "tests")
        });
        in_test_dir
            || file_name == "tests.rs"
            || file_name.ends_with("_tests.rs")
            || file_name.ends_with("_test.rs")
    }

    fn is_test_item(&self, node: Node, preceding: &[Node], source: &[u8]) -> bool {
        if !matches!(kind(node), "mod_item" | "function_item") {
            return false;
        }
        // Attributes are the item's preceding siblings, possibly mixed with comments.
        for sibling in preceding.iter().rev() {
            match kind(*sibling) {
                "attribute_item" => {
                    if is_test_attribute(node_text(*sibling, source)) {
                        return true;
                    }
                }
                "line_comment" | "block_comment" => {}
                _ => break,
            }
        }
        false
    }
}

/// `#[test]`, `#[tokio::test]`, `#[cfg(test)]`, `#[rstest]`, ...
fn is_test_attribute(attribute: &str) -> bool {
    let inner: String = attribute
        .trim_start_matches("#[")
        .trim_end_matches(']')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    inner == "test"
        || inner.ends_with("::test")
        || inner.starts_with("test(")
        || inner.contains("::test(")
        || inner == "cfg(test)"
        || inner.starts_with("cfg(all(test")
        || inner == "rstest"
}

/// Parameters as written, `self` included (clippy's `too_many_arguments` counts it too).
fn count_parameters(parameters: Node) -> u32 {
    let mut cursor = parameters.walk();
    let count = parameters
        .named_children(&mut cursor)
        .filter(|parameter| {
            matches!(
                kind(*parameter),
                "parameter" | "self_parameter" | "variadic_parameter"
            )
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn count_arms(match_expression: Node) -> u32 {
    let Some(body) = match_expression.child_by_field_name("body") else {
        return 0;
    };
    let mut cursor = body.walk();
    let count = body
        .named_children(&mut cursor)
        .filter(|child| kind(*child) == "match_arm")
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The bare name of an `impl` target: `Foo` for `Foo<T>`, `a::Foo`, `&'a Foo`.
fn type_name<'s>(node: Node, source: &'s [u8]) -> &'s str {
    let mut node = node;
    loop {
        let inner = match kind(node) {
            "generic_type" | "reference_type" => node.child_by_field_name("type"),
            "scoped_type_identifier" => node.child_by_field_name("name"),
            _ => None,
        };
        match inner {
            Some(inner) => node = inner,
            None => return node_text(node, source),
        }
    }
}

fn callee<'s>(call: Node, source: &'s [u8]) -> Option<Callee<'s>> {
    let function = call.child_by_field_name("function")?;
    match kind(function) {
        "identifier" => Some(Callee::Bare(node_bytes(function, source))),
        "field_expression" => {
            let value = function.child_by_field_name("value")?;
            let field = function.child_by_field_name("field")?;
            (kind(value) == "self").then(|| Callee::OnSelf(node_bytes(field, source)))
        }
        "scoped_identifier" => {
            let path = function.child_by_field_name("path")?;
            let name = node_bytes(function.child_by_field_name("name")?, source);
            let path_text = node_text(path, source);
            if path_text == "Self" {
                Some(Callee::OnSelf(name))
            } else {
                Some(Callee::OnType {
                    ty: type_name(path, source).as_bytes(),
                    name,
                })
            }
        }
        _ => None,
    }
}
