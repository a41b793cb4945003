//! Python node kinds (tree-sitter-python 0.25) and what they mean to the analyses.
//!
//! Conventions beyond the Cognitive Complexity paper (also in README):
//! - every `except` clause is +1 plus nesting, and its body nests;
//! - `match` is +1 plus nesting once, each `case` body nests, `case ... if` guards are free;
//! - `else` of `for`/`while`/`try` is a flat +1 and its body nests;
//! - `with`, `try`, `finally`, `async`/`await` are free and do not nest;
//! - comprehension `for`/`if` clauses are free and do not nest (a ternary or `and`/`or`
//!   inside them still counts).

use std::path::Path;

use tree_sitter::Node;

use super::{
    Callee, Child, Construct, Container, FunctionShape, KindNames, LogicalOp, StructureKind,
    Syntax, TokenKinds, node_bytes, node_text,
};

pub(super) fn grammar() -> tree_sitter::Language {
    tree_sitter_python::LANGUAGE.into()
}

static KINDS: KindNames = KindNames::new(grammar);

pub(super) const TOKENS: TokenKinds = TokenKinds {
    literals: &["string", "integer", "float", "true", "false"],
    identifiers: &["identifier"],
    comments: &["comment"],
    blocks: &["module", "block"],
    headers: &[
        "import_statement",
        "import_from_statement",
        "future_import_statement",
    ],
    docstring_statement: Some("expression_statement"),
};

fn kind(node: Node) -> &'static str {
    KINDS.of(node)
}

pub(crate) struct Python;

impl Syntax for Python {
    fn function<'tree>(&self, node: Node<'tree>, source: &[u8]) -> Option<FunctionShape<'tree>> {
        if kind(node) != "function_definition" {
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
        if kind(node) != "class_definition" {
            return None;
        }
        Some(Container {
            name: node_text(node.child_by_field_name("name")?, source).to_string(),
            is_type: true,
        })
    }

    fn separator(&self) -> &'static str {
        "."
    }

    fn classify<'s>(&self, node: Node, _parent: Option<Node>, source: &'s [u8]) -> Construct<'s> {
        match kind(node) {
            "if_statement" => Construct::Structure(StructureKind::If),
            "elif_clause" => Construct::Hybrid { is_else_if: true },
            "else_clause" => Construct::Hybrid { is_else_if: false },
            "for_statement" | "while_statement" => Construct::Structure(StructureKind::Loop),
            "except_clause" => Construct::Structure(StructureKind::Catch),
            "conditional_expression" => Construct::Structure(StructureKind::Ternary),
            "match_statement" => Construct::Structure(StructureKind::Match {
                arms: count_cases(node),
            }),
            "boolean_operator" => match node.child_by_field_name("operator").map(kind) {
                Some("and") => Construct::Logical(LogicalOp::And),
                Some("or") => Construct::Logical(LogicalOp::Or),
                _ => Construct::Plain,
            },
            "function_definition" | "lambda" => Construct::NestingOnly,
            "for_in_clause" | "if_clause" => Construct::Clause,
            "return_statement" => Construct::Return,
            "call" => callee(node, source).map_or(Construct::Plain, Construct::Call),
            "decorator" => Construct::Opaque,
            "class_definition" => Construct::Container,
            _ => Construct::Plain,
        }
    }

    fn child_nests(&self, parent: Node, construct: &Construct, child: Child) -> bool {
        let field = child.field;
        match construct {
            Construct::Structure(StructureKind::If) | Construct::Hybrid { is_else_if: true } => {
                field == Some("consequence")
            }
            Construct::Hybrid { is_else_if: false } | Construct::Structure(StructureKind::Loop) => {
                field == Some("body")
            }
            Construct::Structure(StructureKind::Match { .. }) => field == Some("body"),
            Construct::Structure(StructureKind::Catch) => kind(child.node) == "block",
            // `body if condition else alternative`: only the condition stays at this level.
            Construct::Structure(StructureKind::Ternary) => {
                child.node.is_named() && child.previous.is_none_or(|prev| kind(prev) != "if")
            }
            Construct::NestingOnly => match kind(parent) {
                "lambda" => field == Some("body"),
                "function_definition" => field == Some("body") && !is_decorator_wrapper(parent),
                _ => false,
            },
            _ => false,
        }
    }

    fn is_test_path(&self, path: &Path) -> bool {
        let file_name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let in_test_dir = path.parent().is_some_and(|parent| {
            parent
                .components()
                .any(|component| matches!(component.as_os_str().to_str(), Some("tests" | "test")))
        });
        in_test_dir
            || file_name == "conftest.py"
            || file_name.starts_with("test_")
            || file_name.ends_with("_test.py")
    }

    fn is_test_item(&self, node: Node, _preceding: &[Node], source: &[u8]) -> bool {
        let name = |node: Node| {
            node.child_by_field_name("name")
                .map(|name| node_text(name, source))
                .unwrap_or("")
        };
        match kind(node) {
            "function_definition" => name(node).starts_with("test"),
            "class_definition" => name(node).starts_with("Test"),
            _ => false,
        }
    }
}

/// The exception for Python decorators (SonarSource's Python analyzer): a nested function
/// does not add nesting when every other statement of the enclosing function is a
/// `return NAME`, the shape of a decorator (`def deco(f): def wrapper(...): ...; return
/// wrapper`).
fn is_decorator_wrapper(function: Node) -> bool {
    // `Node::parent` walks from the root, but this runs only for nested functions.
    let mut definition = function;
    if let Some(parent) = function
        .parent()
        .filter(|parent| kind(*parent) == "decorated_definition")
    {
        definition = parent;
    }
    let Some(block) = definition
        .parent()
        .filter(|parent| kind(*parent) == "block")
    else {
        return false;
    };
    if block
        .parent()
        .is_none_or(|outer| kind(outer) != "function_definition")
    {
        return false;
    }
    let mut cursor = block.walk();
    block
        .named_children(&mut cursor)
        .filter(|statement| kind(*statement) != "comment" && *statement != definition)
        .all(|statement| {
            kind(statement) == "return_statement"
                && statement.named_child_count() == 1
                && statement
                    .named_child(0)
                    .is_some_and(|value| kind(value) == "identifier")
        })
}

/// Parameters as written, `self`/`cls` included (pylint's `too-many-arguments` counts them
/// too); the bare `*` and `/` separators are not parameters.
fn count_parameters(parameters: Node) -> u32 {
    let mut cursor = parameters.walk();
    let count = parameters
        .named_children(&mut cursor)
        .filter(|parameter| {
            matches!(
                kind(*parameter),
                "identifier"
                    | "typed_parameter"
                    | "default_parameter"
                    | "typed_default_parameter"
                    | "list_splat_pattern"
                    | "dictionary_splat_pattern"
            )
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn count_cases(match_statement: Node) -> u32 {
    let Some(body) = match_statement.child_by_field_name("body") else {
        return 0;
    };
    let mut cursor = body.walk();
    let count = body
        .named_children(&mut cursor)
        .filter(|child| kind(*child) == "case_clause")
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn callee<'s>(call: Node, source: &'s [u8]) -> Option<Callee<'s>> {
    let function = call.child_by_field_name("function")?;
    match kind(function) {
        "identifier" => Some(Callee::Bare(node_bytes(function, source))),
        "attribute" => {
            let object = function.child_by_field_name("object")?;
            let attribute = function.child_by_field_name("attribute")?;
            let receiver = node_text(object, source);
            (kind(object) == "identifier" && matches!(receiver, "self" | "cls"))
                .then(|| Callee::OnSelf(node_bytes(attribute, source)))
        }
        _ => None,
    }
}
