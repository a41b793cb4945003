//! Per-function metrics: lines, parameters, nesting, cyclomatic and cognitive complexity,
//! returns.
//!
//! Cognitive complexity follows G. Ann Campbell's white paper "Cognitive Complexity"
//! (SonarSource): B1 increments for breaks in linear flow, B2 nesting levels and B3 nesting
//! increments. The language modules decide what a node is ([`Construct`]); this module only
//! does the arithmetic, over an explicit stack so that 5,000 nested blocks cannot overflow
//! ours.

use serde::{Deserialize, Serialize};
use tree_sitter::Node;

use crate::analysis::Collector;
use crate::lang::{Callee, Child, Construct, FunctionShape, LogicalOp, StructureKind, Syntax};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Lines from the `def`/`fn` line to the last line of the body, inclusive.
    pub lines: u32,
    /// Parameters as written, receiver (`self`, `cls`) included.
    pub parameters: u32,
    /// The deepest nesting of control-flow structures (`if`/`else`, loops, `match`,
    /// `except`, ternary, `let ... else`) in the body. Closures and nested functions are
    /// transparent.
    pub max_nesting: u32,
    /// McCabe's number: 1 + decisions (`if`, `elif`/`else if`, loops, `except`, ternary,
    /// `let ... else`, match arms − 1, comprehension clauses, each `and`/`or`/`&&`/`||`).
    pub cyclomatic_complexity: u32,
    pub cognitive_complexity: u32,
    /// Explicit `return`s of this function (not of nested functions or closures).
    pub returns: u32,
}

/// Who a function is, for recognising recursive calls.
pub(crate) struct Identity<'a> {
    pub(crate) name: &'a str,
    /// The type the function is a method of (the class, `impl` target or trait), if any.
    pub(crate) owner: Option<&'a str>,
}

impl Identity<'_> {
    fn is_called_by(&self, callee: &Callee) -> bool {
        match callee {
            Callee::Bare(name) => self.owner.is_none() && *name == self.name.as_bytes(),
            Callee::OnSelf(name) => self.owner.is_some() && *name == self.name.as_bytes(),
            Callee::OnType { ty, name } => {
                self.owner.map(str::as_bytes) == Some(*ty) && *name == self.name.as_bytes()
            }
        }
    }
}

struct Frame<'tree> {
    node: Node<'tree>,
    parent: Option<Node<'tree>>,
    /// The parent is a logical operator: this node's operators belong to its sequence.
    in_logical: bool,
    /// The cognitive-complexity nesting level.
    nesting: u32,
    /// Control-flow depth for `max_nesting` (closures and nested functions do not count).
    depth: u32,
    /// Inside a nested function, lambda or closure: its `return`s are not ours.
    nested: bool,
    /// Inside a nested function or container definition (already reported to the caller).
    in_definition: bool,
}

/// Measures `function`. Function and container definitions found in its body (outermost
/// ones only: a method of a nested class is inside the class) go to `collector`, so that
/// the caller can report them without walking the body a second time; so do the nodes of
/// the body outside them, as smell-query start candidates.
pub(crate) fn measure<'tree>(
    syntax: &dyn Syntax,
    function: &FunctionShape<'tree>,
    identity: &Identity,
    source: &[u8],
    collector: &mut Collector<'tree>,
) -> Metrics {
    let start = function.node.start_position().row;
    let end = function.node.end_position().row;
    let mut metrics = Metrics {
        lines: u32::try_from(end.saturating_sub(start) + 1).unwrap_or(u32::MAX),
        parameters: function.parameters,
        cyclomatic_complexity: 1,
        ..Metrics::default()
    };
    let Some(body) = function.body else {
        return metrics;
    };
    let mut recursion_counted = false;
    let mut stack = vec![Frame {
        node: body,
        parent: None,
        in_logical: false,
        nesting: 0,
        depth: 0,
        nested: false,
        in_definition: false,
    }];
    let mut cursor = body.walk();
    while let Some(frame) = stack.pop() {
        let node = frame.node;
        let construct = syntax.classify(node, frame.parent, source);
        let nesting = frame.nesting;
        let mut in_definition = frame.in_definition;
        if !in_definition {
            let is_definition = match construct {
                Construct::Container => true,
                Construct::NestingOnly => syntax.function(node, source).is_some(),
                _ => false,
            };
            if is_definition {
                collector.definitions.push(node);
                in_definition = true;
            } else {
                collector.offer(node);
            }
        }
        match &construct {
            Construct::Structure(kind) => {
                metrics.cognitive_complexity += 1 + nesting;
                metrics.cyclomatic_complexity += match kind {
                    StructureKind::Match { arms } => arms.saturating_sub(1),
                    _ => 1,
                };
            }
            Construct::Hybrid { is_else_if } => {
                metrics.cognitive_complexity += 1;
                metrics.cyclomatic_complexity += u32::from(*is_else_if);
            }
            Construct::LabelledJump => metrics.cognitive_complexity += 1,
            Construct::Logical(_) => {
                // Only the root of a tree of logical operators counts; its inner nodes are
                // read as part of the root's sequence.
                if !frame.in_logical {
                    let (sequences, operators) = logical_sequence(syntax, node, source);
                    metrics.cognitive_complexity += sequences;
                    metrics.cyclomatic_complexity += operators;
                }
            }
            // A direct self-call: calls made from a nested function, lambda or closure are
            // that scope's, not this function's.
            Construct::Call(callee) => {
                if !recursion_counted && !frame.nested && identity.is_called_by(callee) {
                    recursion_counted = true;
                    metrics.cognitive_complexity += 1;
                }
            }
            Construct::Return => metrics.returns += u32::from(!frame.nested),
            Construct::Clause => metrics.cyclomatic_complexity += 1,
            Construct::Opaque => continue,
            Construct::NestingOnly | Construct::Plain | Construct::Container => {}
        }
        let is_control_flow = matches!(
            construct,
            Construct::Structure(_) | Construct::Hybrid { .. }
        );
        let nested = frame.nested || construct == Construct::NestingOnly;
        // A nested function is scored by its body alone: its decorators, parameters and
        // default values are free, as they are for the function itself.
        if construct == Construct::NestingOnly
            && let Some(inner) = syntax.function(node, source)
        {
            if let Some(body) = inner.body {
                let body_child = Child {
                    node: body,
                    field: Some("body"),
                    previous: None,
                };
                let deeper = syntax.child_nests(node, &construct, body_child);
                stack.push(Frame {
                    node: body,
                    parent: Some(node),
                    in_logical: false,
                    nesting: nesting + u32::from(deeper),
                    depth: frame.depth,
                    nested,
                    in_definition,
                });
            }
            continue;
        }
        if !cursor_reset_to_first_child(&mut cursor, node) {
            continue;
        }
        let in_logical = matches!(construct, Construct::Logical(_));
        // Only structures and nested scopes have children one level deeper; for the rest
        // (most nodes) the field lookup is skipped.
        let may_nest = matches!(
            construct,
            Construct::Structure(_) | Construct::Hybrid { .. } | Construct::NestingOnly
        );
        let mut previous = None;
        loop {
            let child = cursor.node();
            let deeper = may_nest
                && syntax.child_nests(
                    node,
                    &construct,
                    Child {
                        node: child,
                        field: cursor.field_name(),
                        previous,
                    },
                );
            previous = Some(child);
            let depth = frame.depth + u32::from(deeper && is_control_flow);
            metrics.max_nesting = metrics.max_nesting.max(depth);
            stack.push(Frame {
                node: child,
                parent: Some(node),
                in_logical,
                in_definition,
                nesting: nesting + u32::from(deeper),
                depth,
                nested,
            });
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }
    metrics
}

fn cursor_reset_to_first_child<'tree>(
    cursor: &mut tree_sitter::TreeCursor<'tree>,
    node: Node<'tree>,
) -> bool {
    cursor.reset(node);
    cursor.goto_first_child()
}

/// Reads the tree of logical operators rooted at `root` in source order and returns
/// (cognitive increments, operator count). Parentheses and negations are not logical
/// operators, so they end the tree and start a sequence of their own.
fn logical_sequence(syntax: &dyn Syntax, root: Node, source: &[u8]) -> (u32, u32) {
    enum Item<'tree> {
        Node(Node<'tree>, LogicalOp),
        Operator(LogicalOp),
    }
    let Construct::Logical(op) = syntax.classify(root, None, source) else {
        return (0, 0);
    };
    let mut sequences = 0;
    let mut operators = 0;
    let mut previous: Option<LogicalOp> = None;
    let mut stack = vec![Item::Node(root, op)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Operator(op) => {
                operators += 1;
                if previous != Some(op) {
                    sequences += 1;
                }
                previous = Some(op);
            }
            Item::Node(node, op) => {
                // Operands in order with the operator between each pair; pushed reversed.
                let mut cursor = node.walk();
                let operands: Vec<Node> = node
                    .named_children(&mut cursor)
                    .filter(|child| !child.is_extra())
                    .collect();
                for (index, operand) in operands.iter().enumerate().rev() {
                    if let Construct::Logical(inner) = syntax.classify(*operand, Some(node), source)
                    {
                        stack.push(Item::Node(*operand, inner));
                    }
                    if index > 0 {
                        stack.push(Item::Operator(op));
                    }
                }
            }
        }
    }
    (sequences, operators)
}
