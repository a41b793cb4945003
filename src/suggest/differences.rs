//! What a helper that replaces the copies of a duplicated function must take as
//! parameters: the copies are compared leaf token by leaf token (comments and docstrings
//! left out), and every place where they differ becomes a parameter, one per distinct
//! tuple of values. A local variable renamed consistently needs none (the helper keeps
//! copy 1's names).
//!
//! Python methods get one more rule: `self.__name` is mangled per class, so a helper
//! outside the class cannot spell it; each such attribute the copies read is passed in.
//!
//! When the copies cannot be bridged this way (they differ in an attribute or method
//! name, an operator or a keyword, in their length (Type 3), or the method needs its
//! class: zero-argument `super()`, a private attribute it assigns), [`substitutions`]
//! says so with `None`, and the prompt asks for a helper in general terms instead.

use std::collections::{BTreeSet, HashMap};

use tree_sitter::{Node, Parser};

use crate::lang::Language;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Identifier,
    Literal,
    Other,
}

#[derive(Debug)]
struct Leaf {
    text: String,
    class: Class,
}

/// One parameter the helper takes in place of code that differs between the copies (or
/// that it cannot spell outside the class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Substitution {
    /// What copy 1 has where the helper uses the parameter (`FIFOCache`, `self.__order`).
    pub(crate) from: String,
    pub(crate) parameter: String,
    /// The argument each copy passes, in copy order.
    pub(crate) arguments: Vec<String>,
}

/// The leaves of `code`, a whole function, in order: identifiers, literals (whole, a
/// string is one leaf) and every other token; comments and docstrings left out. `None`
/// when the code does not parse.
fn leaves(language: &Language, code: &str) -> Option<Vec<Leaf>> {
    let code = dedent(code);
    let mut parser = Parser::new();
    parser.set_language(&(language.grammar)()).ok()?;
    let tree = parser.parse(&code, None)?;
    if tree.root_node().has_error() {
        return None;
    }
    let mut out = Vec::new();
    collect(language, tree.root_node(), code.as_bytes(), &mut out);
    Some(out)
}

fn collect(language: &Language, node: Node, source: &[u8], out: &mut Vec<Leaf>) {
    let kinds = &language.tokens;
    let kind = node.kind();
    if kinds.comments.contains(&kind) {
        return;
    }
    let text = || {
        node.utf8_text(source)
            .map(str::to_string)
            .unwrap_or_default()
    };
    if kinds.literals.contains(&kind) {
        out.push(Leaf {
            text: text(),
            class: Class::Literal,
        });
        return;
    }
    if kinds.docstring_statement == Some(kind)
        && node.named_child_count() == 1
        && node
            .named_child(0)
            .is_some_and(|child| kinds.literals.contains(&child.kind()))
    {
        return;
    }
    if node.child_count() == 0 {
        let class = if kinds.identifiers.contains(&kind) {
            Class::Identifier
        } else {
            Class::Other
        };
        out.push(Leaf {
            text: text(),
            class,
        });
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect(language, child, source, out);
    }
}

/// `code` with the indentation its lines share removed (a method, cut out of its class,
/// parses on its own).
fn dedent(code: &str) -> String {
    let indent = code
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    code.lines()
        .map(|line| line.get(indent..).unwrap_or(line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// The text of leaf `index` of `copy` ("" past either end).
fn text(copy: &[Leaf], index: usize) -> &str {
    copy.get(index).map_or("", |leaf| leaf.text.as_str())
}

/// The text of the leaf before `index`.
fn before(copy: &[Leaf], index: usize) -> &str {
    index.checked_sub(1).map_or("", |index| text(copy, index))
}

/// The parameters a helper shared by `codes` (whole functions, copy 1 first) takes
/// besides copy 1's own, or `None` when the copies cannot be bridged by parameters.
/// `parameters` are copy 1's parameter names; `method` says the copies are Python
/// methods (their first parameter is `self`).
pub(crate) fn substitutions(
    language: &Language,
    codes: &[&str],
    parameters: &[String],
    method: bool,
) -> Option<Vec<Substitution>> {
    let copies: Vec<Vec<Leaf>> = codes
        .iter()
        .map(|code| leaves(language, code))
        .collect::<Option<_>>()?;
    let first = copies.first()?;
    if copies.iter().any(|copy| copy.len() != first.len()) {
        return None;
    }
    let python = language.name == "python";
    // The function's own name: the first identifier after `def` / `fn`.
    let name_index = first
        .iter()
        .position(|leaf| leaf.text == "def" || leaf.text == "fn")
        .map(|index| index + 1);
    // Names copy 1 binds itself: its parameters and what it assigns or loops over.
    let mut bound: BTreeSet<&str> = parameters.iter().map(String::as_str).collect();
    for (index, leaf) in first.iter().enumerate() {
        if leaf.class != Class::Identifier || before(first, index) == "." {
            continue;
        }
        let next = text(first, index + 1);
        if matches!(next, "=" | ":=")
            || matches!(
                before(first, index),
                "for" | "as" | "let" | "mut" | "lambda"
            )
        {
            bound.insert(&leaf.text);
        }
    }
    let names: BTreeSet<&str> = first
        .iter()
        .filter(|leaf| leaf.class == Class::Identifier)
        .map(|leaf| leaf.text.as_str())
        .collect();
    // Every copy renames names one for one (a bijection), or a helper with copy 1's
    // names would compute something else.
    for copy in &copies[1..] {
        let mut forward: HashMap<&str, &str> = HashMap::new();
        let mut backward: HashMap<&str, &str> = HashMap::new();
        for (a, b) in first.iter().zip(copy) {
            if a.class != b.class || (a.class == Class::Other && a.text != b.text) {
                return None;
            }
            if a.class == Class::Identifier
                && (*forward.entry(&a.text).or_insert(&b.text) != b.text
                    || *backward.entry(&b.text).or_insert(&a.text) != a.text)
            {
                return None;
            }
        }
    }
    let mut out: Vec<Substitution> = Vec::new();
    let mut taken: BTreeSet<String> = names.iter().map(|name| name.to_string()).collect();
    for index in 0..first.len() {
        let leaf = &first[index];
        if Some(index) == name_index {
            continue;
        }
        if python && method {
            if leaf.text == "super" || leaf.text == "__class__" {
                return None;
            }
            let private = leaf.text.starts_with("__") && !leaf.text.ends_with("__");
            if leaf.class == Class::Identifier && private {
                let on_self =
                    before(first, index) == "." && index >= 2 && first[index - 2].text == "self";
                let next = text(first, index + 1);
                let assigned = next.ends_with('=') && !matches!(next, "==" | "!=" | "<=" | ">=");
                if !on_self || assigned {
                    return None;
                }
                // Each copy passes its own (mangled in its own class).
                let arguments: Vec<String> = copies
                    .iter()
                    .map(|copy| format!("self.{}", copy[index].text))
                    .collect();
                if !out.iter().any(|s| s.arguments == arguments) {
                    let parameter = fresh(leaf.text.trim_start_matches('_'), &mut taken);
                    out.push(Substitution {
                        from: arguments[0].clone(),
                        parameter,
                        arguments,
                    });
                }
                continue;
            }
        }
        let values: Vec<&str> = copies
            .iter()
            .map(|copy| copy[index].text.as_str())
            .collect();
        if values.iter().all(|value| *value == values[0]) {
            continue;
        }
        match leaf.class {
            Class::Other => return None,
            Class::Identifier if before(first, index) == "." => return None,
            Class::Identifier if bound.contains(leaf.text.as_str()) => continue,
            _ if !python => return None,
            _ => {}
        }
        let arguments: Vec<String> = values.iter().map(|value| value.to_string()).collect();
        if out.iter().any(|s| s.arguments == arguments) {
            continue;
        }
        let parameter = fresh(&parameter_name(&values, leaf.class), &mut taken);
        out.push(Substitution {
            from: leaf.text.clone(),
            parameter,
            arguments,
        });
    }
    Some(out)
}

/// A name for the parameter that takes `values`: the words they share (`FIFOCache`,
/// `LRUCache`: `cache_class`), else what kind of value it is.
fn parameter_name(values: &[&str], class: Class) -> String {
    if class == Class::Literal {
        let value = values[0];
        return if value.starts_with(['"', '\'']) || value.contains(['"', '\'']) {
            "text".to_string()
        } else if value.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            "number".to_string()
        } else {
            "value".to_string()
        };
    }
    let split: Vec<Vec<String>> = values.iter().map(|value| words(value)).collect();
    let common: Vec<String> = split[0]
        .iter()
        .filter(|word| split.iter().all(|words| words.contains(word)))
        .cloned()
        .collect();
    let classes = values
        .iter()
        .all(|value| value.chars().next().is_some_and(char::is_uppercase));
    let base = if common.is_empty() {
        "value".to_string()
    } else {
        common.join("_")
    };
    if classes {
        format!("{base}_class")
    } else {
        base
    }
}

/// The lowercase words of a snake_case or CamelCase name (`FIFOCache`: fifo, cache).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (index, &ch) in chars.iter().enumerate() {
        if ch == '_' {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = ch.is_uppercase()
            && !current.is_empty()
            && (chars[index - 1].is_lowercase()
                || chars.get(index + 1).is_some_and(|next| next.is_lowercase()));
        if boundary {
            out.push(std::mem::take(&mut current));
        }
        current.extend(ch.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `base`, or `base_2`, ... : the first that no name of the code uses.
fn fresh(base: &str, taken: &mut BTreeSet<String>) -> String {
    let base = if base.is_empty() { "value" } else { base };
    let mut name = base.to_string();
    let mut number = 2;
    while taken.contains(&name) || PYTHON_KEYWORDS.contains(&name.as_str()) {
        name = format!("{base}_{number}");
        number += 1;
    }
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> &'static Language {
        Language::by_name("python").unwrap()
    }

    fn rust() -> &'static Language {
        Language::by_name("rust").unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    const FIFO: &str = r#"def fifo_cache(maxsize=128, typed=False):
    """Decorator: First In First Out (FIFO)."""
    if maxsize is None:
        return _cache({}, None, typed)
    return _cache(FIFOCache(maxsize), maxsize, typed)"#;

    const LRU: &str = r#"def lru_cache(maxsize=128, typed=False):
    """Decorator: Least Recently Used (LRU)."""
    if maxsize is None:
        return _cache({}, None, typed)
    return _cache(LRUCache(maxsize), maxsize, typed)"#;

    #[test]
    fn a_renamed_class_becomes_one_parameter_and_docstrings_do_not_count() {
        let found = substitutions(python(), &[FIFO, LRU], &names(&["maxsize", "typed"]), false);
        assert_eq!(
            found,
            Some(vec![Substitution {
                from: "FIFOCache".to_string(),
                parameter: "cache_class".to_string(),
                arguments: names(&["FIFOCache", "LRUCache"]),
            }])
        );
    }

    #[test]
    fn identical_copies_need_no_parameter() {
        assert_eq!(
            substitutions(
                python(),
                &[FIFO, FIFO],
                &names(&["maxsize", "typed"]),
                false
            ),
            Some(Vec::new())
        );
    }

    #[test]
    fn renamed_locals_need_no_parameter_but_differing_literals_do() {
        let a = "def f(x):\n    total = x + 1\n    return total * 2";
        let b = "def g(y):\n    result = y + 1\n    return result * 3";
        let found = substitutions(python(), &[a, b], &names(&["x"]), false).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].from, "2");
        assert_eq!(found[0].parameter, "number");
        assert_eq!(found[0].arguments, names(&["2", "3"]));
    }

    #[test]
    fn private_attributes_of_self_are_passed_in() {
        let a = "    def popitem(self):\n        key = next(iter(self.__order))\n        del self[key]\n        return key";
        let found = substitutions(python(), &[a, a], &names(&["self"]), true).unwrap();
        assert_eq!(
            found,
            vec![Substitution {
                from: "self.__order".to_string(),
                parameter: "order".to_string(),
                arguments: names(&["self.__order", "self.__order"]),
            }]
        );
    }

    #[test]
    fn copies_that_cannot_be_bridged_get_none() {
        // An assigned private attribute, zero-argument super(), a different attribute,
        // a different operator, a different length, an inconsistent renaming.
        let assigned = "def reset(self):\n    self.__order = []";
        assert_eq!(
            substitutions(python(), &[assigned, assigned], &names(&["self"]), true),
            None
        );
        let sup = "def copy(self):\n    return super().copy()";
        assert_eq!(
            substitutions(python(), &[sup, sup], &names(&["self"]), true),
            None
        );
        let a = "def f(o):\n    return o.left + 1";
        let b = "def g(o):\n    return o.right + 1";
        assert_eq!(
            substitutions(python(), &[a, b], &names(&["o"]), false),
            None
        );
        let c = "def g(o):\n    return o.left - 1";
        assert_eq!(
            substitutions(python(), &[a, c], &names(&["o"]), false),
            None
        );
        let d = "def g(o):\n    return o.left + 1 + 2";
        assert_eq!(
            substitutions(python(), &[a, d], &names(&["o"]), false),
            None
        );
        let e = "def f(a, b):\n    return a + b";
        let f = "def f(a, b):\n    return a + a";
        assert_eq!(
            substitutions(python(), &[e, f], &names(&["a", "b"]), false),
            None
        );
    }

    #[test]
    fn rust_copies_bridge_only_when_nothing_but_locals_differ() {
        let a = "fn f(x: u32) -> u32 {\n    let y = x + 1;\n    y * 2\n}";
        let b = "fn g(z: u32) -> u32 {\n    let w = z + 1;\n    w * 2\n}";
        assert_eq!(
            substitutions(rust(), &[a, b], &names(&["x"]), false),
            Some(Vec::new())
        );
        let c = "fn g(z: u32) -> u32 {\n    let w = z + 1;\n    w * 3\n}";
        assert_eq!(substitutions(rust(), &[a, c], &names(&["x"]), false), None);
    }

    #[test]
    fn words_split_acronyms_and_snake_case() {
        assert_eq!(words("FIFOCache"), names(&["fifo", "cache"]));
        assert_eq!(words("lru_cache"), names(&["lru", "cache"]));
        assert_eq!(
            words("getHTTPResponse"),
            names(&["get", "http", "response"])
        );
    }
}
