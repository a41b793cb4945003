//! From clone classes to findings: rule, severity, message, locations and properties, and
//! for Type-2 classes whether the renaming is consistent (one name for one name across
//! every copy: a parameterized helper replaces them directly).

use std::collections::HashMap;

use super::extract::{self, Token};
use super::{CloneClass, RULES, Unit};
use crate::config::Config;
use crate::finding::{CloneProperties, Finding, Kind, Location, Severity, stable_id};
use crate::lang::Language;

/// A file as the report needs it.
pub(crate) struct ReportFile<'a> {
    pub(crate) path: &'a str,
    pub(crate) units: &'a super::CloneUnits,
    pub(crate) language: &'static Language,
}

/// The findings for `classes` (already ordered by value), those of disabled rules left out.
pub(crate) fn findings(
    classes: &[CloneClass],
    files: &[ReportFile],
    config: &Config,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for class in classes {
        let rule = &RULES[usize::from(class.clone_type.clamp(1, 3)) - 1];
        if !config.rule_enabled(rule.id) {
            continue;
        }
        let renaming = (class.clone_type == 2)
            .then(|| renaming(class, files))
            .flatten();
        let in_tests = class.instances.iter().all(|instance| instance.in_test);
        let mut severity = config.severity(rule.id, rule.severity);
        if in_tests {
            severity = Severity::Note;
        }
        let locations: Vec<Location> = class
            .instances
            .iter()
            .map(|instance| instance.span.location(files[instance.file].path))
            .collect();
        let paths: Vec<&str> = locations
            .iter()
            .map(|location| location.path.as_str())
            .collect();
        let function = class.instances[0].function.clone();
        let id = stable_id(
            rule.id,
            &paths.join("\n"),
            function.as_deref(),
            &format!("{:016x}", class.shape),
            0,
        );
        out.push(Finding {
            id,
            rule: rule.id.to_string(),
            kind: Kind::Duplicate,
            severity,
            message: message(class, renaming.as_ref()),
            locations,
            metrics: None,
            function,
            properties: Some(CloneProperties {
                clone_type: class.clone_type,
                similarity: (class.similarity * 1000.0).round() / 1000.0,
                lines: class.lines(),
                tokens: class.tokens(),
                instances: class.instances.len(),
                unit: class.unit.as_str().to_string(),
                value: (class.value() * 10.0).round() / 10.0,
                files: class.files(),
                renaming: renaming.as_ref().map(|renaming| {
                    if renaming.consistent {
                        "consistent".to_string()
                    } else {
                        "inconsistent".to_string()
                    }
                }),
                in_tests,
            }),
        });
    }
    out
}

fn message(class: &CloneClass, renaming: Option<&Renaming>) -> String {
    let count = class.instances.len();
    let lines = class.lines();
    let what = match (class.unit, &class.instances[0].function) {
        (Unit::Function, Some(name)) => format!("function `{name}` ({lines} lines)"),
        _ => format!("{lines} lines of statements"),
    };
    match class.clone_type {
        1 => format!("{count} identical copies of {what}"),
        2 => {
            let differences = match renaming {
                Some(renaming) => {
                    let mut parts = Vec::new();
                    if renaming.names > 0 {
                        parts.push(format!(
                            "{} {} renamed {}",
                            renaming.names,
                            plural(renaming.names, "name", "names"),
                            if renaming.consistent {
                                "consistently"
                            } else {
                                "inconsistently"
                            }
                        ));
                    }
                    if renaming.literals > 0 {
                        parts.push(format!(
                            "{} {}",
                            renaming.literals,
                            plural(renaming.literals, "literal", "literals")
                        ));
                    }
                    if parts.is_empty() {
                        "layout".to_string()
                    } else {
                        parts.join(" and ")
                    }
                }
                None => "names and literals".to_string(),
            };
            format!("{count} copies of {what} that differ only in {differences}")
        }
        _ => format!(
            "{count} near-miss copies of {what}, {:.0}% similar",
            class.similarity * 100.0
        ),
    }
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

/// How the copies of a Type-2 class differ from the first.
struct Renaming {
    /// Each name maps to one name in every other copy, and back.
    consistent: bool,
    /// Distinct names of the first copy that another copy spells differently (the most
    /// over all copies).
    names: usize,
    /// Literal positions whose value differs (the most over all copies).
    literals: usize,
}

/// Compares each copy's tokens with the first's. `None` if they do not line up (which
/// equal token kinds rule out).
fn renaming(class: &CloneClass, files: &[ReportFile]) -> Option<Renaming> {
    let instance_tokens: Vec<Vec<Token>> = class
        .instances
        .iter()
        .map(|instance| {
            let file = &files[instance.file];
            extract::tokens_in(file.language, file.units, instance.range)
        })
        .collect();
    let reference = &instance_tokens[0];
    let mut result = Renaming {
        consistent: true,
        names: 0,
        literals: 0,
    };
    for other in &instance_tokens[1..] {
        if other.len() != reference.len() {
            return None;
        }
        let mut forward: HashMap<u32, u32> = HashMap::new();
        let mut backward: HashMap<u32, u32> = HashMap::new();
        let mut literals = 0;
        for (a, b) in reference.iter().zip(other) {
            if a.kind != b.kind {
                return None;
            }
            if a.is_identifier {
                let consistent = *forward.entry(a.text).or_insert(b.text) == b.text
                    && *backward.entry(b.text).or_insert(a.text) == a.text;
                result.consistent &= consistent;
            } else if a.is_literal && a.text != b.text {
                literals += 1;
            }
        }
        let names = forward.iter().filter(|(a, b)| a != b).count();
        result.names = result.names.max(names);
        result.literals = result.literals.max(literals);
    }
    Some(result)
}
