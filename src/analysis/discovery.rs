//! Finding functions: definitions with their qualified names, measured as they are found,
//! in the main tree and in the trees of item-level macro bodies.

use tree_sitter::Node;

use crate::analysis::metrics::{self, Identity};
use crate::analysis::{FunctionReport, location};
use crate::lang::{FunctionShape, Language};

/// A function, class, `impl`, trait or module around the nodes being visited.
struct Scope {
    parent: Option<usize>,
    name: String,
    /// The type a function directly in this scope is a method of.
    owner: Option<String>,
}

/// What the walks collect besides metrics: definitions nested in a measured function's
/// body, and the nodes where a smell query can start (`roots`, by kind id).
pub(crate) struct Collector<'tree> {
    pub(crate) definitions: Vec<Node<'tree>>,
    pub(crate) candidates: Vec<Node<'tree>>,
    roots: &'static [bool],
}

impl<'tree> Collector<'tree> {
    pub(super) fn new(roots: &'static [bool]) -> Collector<'tree> {
        Collector {
            definitions: Vec::new(),
            candidates: Vec::new(),
            roots,
        }
    }

    pub(crate) fn offer(&mut self, node: Node<'tree>) {
        if self
            .roots
            .get(usize::from(node.kind_id()))
            .is_some_and(|&is_root| is_root)
        {
            self.candidates.push(node);
        }
    }
}

/// The body of an item-level macro, waiting to be parsed as items of its own.
pub(super) struct MacroBody {
    pub(super) range: tree_sitter::Range,
    pub(super) scope: Option<usize>,
}

/// At most this many macro bodies are parsed per file (nested ones included).
pub(super) const MAX_MACRO_BODIES: usize = 10_000;

/// Finds every function definition, with its qualified name and metrics, across the
/// file's main tree and the trees of its item-level macro bodies.
#[derive(Default)]
pub(super) struct Discovery {
    scopes: Vec<Scope>,
    pub(super) functions: Vec<FunctionReport>,
    pub(super) macro_bodies: Vec<MacroBody>,
}

impl Discovery {
    pub(super) fn visit<'tree>(
        &mut self,
        language: &Language,
        path: &str,
        root: Node<'tree>,
        scope: Option<usize>,
        source: &[u8],
        collector: &mut Collector<'tree>,
    ) {
        let syntax = language.syntax;
        let mut stack: Vec<(Node, Option<usize>)> = vec![(root, scope)];
        let mut cursor = root.walk();
        while let Some((node, scope)) = stack.pop() {
            collector.offer(node);
            let mut child_scope = scope;
            let mut measured_body = None;
            if let Some(shape) = syntax.function(node, source) {
                if !node.has_error()
                    && let Some(body) = shape.body
                {
                    self.measure(language, path, &shape, scope, source, collector);
                    measured_body = Some(body);
                }
                self.scopes.push(Scope {
                    parent: scope,
                    name: shape.name,
                    owner: None,
                });
                child_scope = Some(self.scopes.len() - 1);
                // Measuring walked the body and collected the definitions inside it.
                stack.extend(
                    collector
                        .definitions
                        .drain(..)
                        .map(|inner| (inner, child_scope)),
                );
            } else if let Some(container) = syntax.container(node, source) {
                self.scopes.push(Scope {
                    parent: scope,
                    owner: container.is_type.then(|| container.name.clone()),
                    name: container.name,
                });
                child_scope = Some(self.scopes.len() - 1);
            }
            cursor.reset(node);
            if cursor.goto_first_child() {
                loop {
                    let child = cursor.node();
                    if Some(child) != measured_body {
                        match syntax.item_macro_body(child, node, source) {
                            Some(range) => self.macro_bodies.push(MacroBody {
                                range,
                                scope: child_scope,
                            }),
                            None => stack.push((child, child_scope)),
                        }
                    }
                    if !cursor.goto_next_sibling() {
                        break;
                    }
                }
            }
        }
    }

    fn measure<'tree>(
        &mut self,
        language: &Language,
        path: &str,
        shape: &FunctionShape<'tree>,
        scope: Option<usize>,
        source: &[u8],
        collector: &mut Collector<'tree>,
    ) {
        let owner = scope.and_then(|index| self.scopes[index].owner.as_deref());
        let identity = Identity {
            name: &shape.name,
            owner,
        };
        let metrics = metrics::measure(language.syntax, shape, &identity, source, collector);
        let qualified_name = qualify(
            &self.scopes,
            scope,
            &shape.name,
            language.syntax.separator(),
        );
        let location = location(path, shape.node);
        self.functions.push(FunctionReport {
            name: shape.name.clone(),
            qualified_name,
            start_line: location.start_line,
            end_line: location.end_line,
            metrics,
            location,
        });
    }
}

fn qualify(scopes: &[Scope], scope: Option<usize>, name: &str, separator: &str) -> String {
    let mut parts = vec![name];
    let mut current = scope;
    while let Some(index) = current {
        parts.push(&scopes[index].name);
        current = scopes[index].parent;
    }
    parts.reverse();
    parts.join(separator)
}
