//! `refactor-ai.toml`: thresholds, enabled rules and excluded paths, read from the scanned
//! root (or `--config FILE`). Unknown keys and wrong types are errors that name the file,
//! the key and what is allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::finding::Severity;
use crate::lang::{LANGUAGES, Language};

pub(crate) const FILE_NAME: &str = "refactor-ai.toml";

/// Paths skipped unless the config sets `walk.default_excludes = false`
/// (gitignore syntax, relative to the scanned root). Migrations are matched by the files
/// frameworks generate (Django's numbered modules, Alembic's `versions/`), not by any
/// directory called `migrations`: Django's own migration engine lives in one.
pub(crate) const DEFAULT_EXCLUDES: &[&str] = &[
    "target/",
    "vendor/",
    "node_modules/",
    "__pycache__/",
    "**/migrations/[0-9][0-9][0-9][0-9]_*.py",
    "**/migrations/versions/",
    "**/alembic/versions/",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    walk: RawWalk,
    thresholds: RawThresholds,
    rules: RawRules,
    duplicates: RawDuplicates,
    validate: Validate,
}

/// `[validate]`: how `suggest` builds and tests a proposal in its sandbox.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Validate {
    /// The build and test command, run by `sh -c` in the sandbox (default: detected).
    pub(crate) command: Option<String>,
    /// Whose summary the command prints: `cargo`, `pytest` or `unittest` (default: only
    /// the exit status counts, unless a known summary is found).
    pub(crate) runner: Option<String>,
    /// Seconds one run may take before its process group is killed (default 600).
    pub(crate) timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDuplicates {
    enabled: Option<bool>,
    min_tokens: Option<u32>,
    min_lines: Option<u32>,
    min_function_tokens: Option<u32>,
    min_similarity: Option<f64>,
    near_miss: Option<bool>,
    near_miss_in_tests: Option<bool>,
}

/// Clone detection settings, `[duplicates]` in the config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Duplicates {
    pub(crate) enabled: bool,
    /// A run of statements must have at least this many tokens ...
    pub(crate) min_tokens: u32,
    /// ... and every unit at least this many lines.
    pub(crate) min_lines: u32,
    /// A whole function needs fewer tokens than a run of statements: its boundaries alone
    /// make it a refactorable unit.
    pub(crate) min_function_tokens: u32,
    /// Near-miss (Type-3) clones: the least similarity of their normalized tokens.
    pub(crate) min_similarity: f64,
    pub(crate) near_miss: bool,
    /// Near-miss clones among test code (tests repeat their set-up on purpose).
    pub(crate) near_miss_in_tests: bool,
}

impl Default for Duplicates {
    fn default() -> Self {
        Duplicates {
            enabled: true,
            min_tokens: 50,
            min_lines: 6,
            min_function_tokens: 20,
            min_similarity: 0.75,
            near_miss: true,
            near_miss_in_tests: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWalk {
    exclude: Vec<String>,
    default_excludes: Option<bool>,
    max_file_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawThresholds {
    cognitive_complexity: Option<u32>,
    lines: Option<u32>,
    max_nesting: Option<u32>,
    parameters: Option<u32>,
    python: RawLanguageThresholds,
    rust: RawLanguageThresholds,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLanguageThresholds {
    cognitive_complexity: Option<u32>,
    lines: Option<u32>,
    max_nesting: Option<u32>,
    parameters: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRules {
    select: Option<Vec<String>>,
    ignore: Vec<String>,
    severity: BTreeMap<String, Severity>,
}

/// A finding is reported when a metric is strictly greater than its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub(crate) cognitive_complexity: u32,
    pub(crate) lines: u32,
    pub(crate) max_nesting: u32,
    pub(crate) parameters: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) excludes: Vec<String>,
    pub(crate) max_file_size: u64,
    /// Per language, indexed like [`LANGUAGES`].
    pub(crate) thresholds: Vec<Thresholds>,
    select: Option<Vec<String>>,
    ignore: Vec<String>,
    severity: BTreeMap<String, Severity>,
    pub(crate) duplicates: Duplicates,
    pub(crate) validate: Validate,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default())
    }
}

impl Config {
    /// Reads `explicit`, or else `root/refactor-ai.toml` if it exists, or else the defaults.
    pub(crate) fn load(root: &Path, explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => {
                let candidate = if root.is_dir() {
                    root.join(FILE_NAME)
                } else {
                    root.parent().unwrap_or(Path::new(".")).join(FILE_NAME)
                };
                if !candidate.is_file() {
                    return Ok(Config::default());
                }
                candidate
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text, &path)
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            // serde names Rust types; say what a user may write instead.
            let message = error
                .to_string()
                .replace("expected u32", "expected a non-negative integer")
                .replace("expected u64", "expected a non-negative integer");
            invalid(message)
        })?;
        let known = known_rule_ids();
        let unknown_rule = |key: &str, id: &str| {
            invalid(format!(
                "`{key}` names unknown rule `{id}`; known rules: {}",
                known.join(", ")
            ))
        };
        for id in raw.rules.select.iter().flatten() {
            if !known.iter().any(|known| known == id) {
                return Err(unknown_rule("rules.select", id));
            }
        }
        for id in &raw.rules.ignore {
            if !known.iter().any(|known| known == id) {
                return Err(unknown_rule("rules.ignore", id));
            }
        }
        for id in raw.rules.severity.keys() {
            if !known.iter().any(|known| known == id) {
                return Err(unknown_rule("rules.severity", id));
            }
        }
        if let Some(similarity) = raw.duplicates.min_similarity
            && !(0.0..=1.0).contains(&similarity)
        {
            return Err(invalid(format!(
                "`duplicates.min_similarity` is {similarity}; it must be between 0.0 and 1.0 (default 0.75)"
            )));
        }
        for pattern in &raw.walk.exclude {
            ignore::gitignore::GitignoreBuilder::new("")
                .add_line(None, pattern)
                .map_err(|error| {
                    invalid(format!(
                        "`walk.exclude` entry `{pattern}` is not a gitignore pattern: {error}"
                    ))
                })?;
        }
        if let Some(runner) = &raw.validate.runner
            && !["cargo", "pytest", "unittest"].contains(&runner.as_str())
        {
            return Err(invalid(format!(
                "`validate.runner` is `{runner}`; it must be `cargo`, `pytest` or `unittest`"
            )));
        }
        if raw.validate.timeout == Some(0) {
            return Err(invalid(
                "`validate.timeout` is 0; give the seconds a test run may take".to_string(),
            ));
        }
        Ok(Config::from_raw(raw))
    }

    fn from_raw(raw: RawConfig) -> Config {
        let mut excludes = Vec::new();
        if raw.walk.default_excludes.unwrap_or(true) {
            excludes.extend(DEFAULT_EXCLUDES.iter().map(|pattern| pattern.to_string()));
        }
        excludes.extend(raw.walk.exclude);
        let common = &raw.thresholds;
        let thresholds = LANGUAGES
            .iter()
            .map(|language| {
                // One `[thresholds.<language>]` field per row of the language table.
                let specific = match language.name {
                    "python" => common.python,
                    "rust" => common.rust,
                    _ => RawLanguageThresholds::default(),
                };
                Thresholds {
                    cognitive_complexity: specific
                        .cognitive_complexity
                        .or(common.cognitive_complexity)
                        .unwrap_or(15),
                    lines: specific.lines.or(common.lines).unwrap_or(80),
                    max_nesting: specific.max_nesting.or(common.max_nesting).unwrap_or(4),
                    parameters: specific
                        .parameters
                        .or(common.parameters)
                        .unwrap_or(language.max_parameters),
                }
            })
            .collect();
        Config {
            excludes,
            max_file_size: raw.walk.max_file_size.unwrap_or(1024 * 1024),
            thresholds,
            select: raw.rules.select,
            ignore: raw.rules.ignore,
            severity: raw.rules.severity,
            validate: raw.validate,
            duplicates: {
                let defaults = Duplicates::default();
                let raw = raw.duplicates;
                Duplicates {
                    enabled: raw.enabled.unwrap_or(defaults.enabled),
                    min_tokens: raw.min_tokens.unwrap_or(defaults.min_tokens),
                    min_lines: raw.min_lines.unwrap_or(defaults.min_lines),
                    min_function_tokens: raw
                        .min_function_tokens
                        .unwrap_or(defaults.min_function_tokens),
                    min_similarity: raw.min_similarity.unwrap_or(defaults.min_similarity),
                    near_miss: raw.near_miss.unwrap_or(defaults.near_miss),
                    near_miss_in_tests: raw
                        .near_miss_in_tests
                        .unwrap_or(defaults.near_miss_in_tests),
                }
            },
        }
    }

    pub(crate) fn thresholds(&self, language: &Language) -> Thresholds {
        self.thresholds[language.index()]
    }

    pub(crate) fn rule_enabled(&self, id: &str) -> bool {
        let selected = self
            .select
            .as_ref()
            .is_none_or(|select| select.iter().any(|selected| selected == id));
        selected && !self.ignore.iter().any(|ignored| ignored == id)
    }

    /// The configured severity for `id`, or `default`.
    pub(crate) fn severity(&self, id: &str, default: Severity) -> Severity {
        self.severity.get(id).copied().unwrap_or(default)
    }
}

/// Every rule id a config may name: the metric rules and each language's query rules (read
/// from the query text: compiling the queries here would cost a fraction of a second).
pub(crate) fn known_rule_ids() -> Vec<String> {
    let mut ids: Vec<String> = crate::analysis::smells::METRIC_RULES
        .iter()
        .map(|rule| rule.id.to_string())
        .chain(
            crate::analysis::clones::RULES
                .iter()
                .map(|rule| rule.id.to_string()),
        )
        .collect();
    for language in LANGUAGES {
        for id in crate::analysis::smells::declared_rule_ids(language) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: &[&str]) {
        let error = Config::parse(text, Path::new("dir/refactor-ai.toml"))
            .expect_err("config should be rejected")
            .to_string();
        for part in expected {
            assert!(error.contains(part), "{error:?} should contain {part:?}");
        }
    }

    #[test]
    fn defaults_match_sonar_pylint_and_clippy() {
        let config = Config::default();
        let python = config.thresholds(Language::by_name("python").unwrap());
        let rust = config.thresholds(Language::by_name("rust").unwrap());
        assert_eq!(python.cognitive_complexity, 15);
        assert_eq!(python.lines, 80);
        assert_eq!(python.max_nesting, 4);
        assert_eq!(python.parameters, 5);
        assert_eq!(rust.parameters, 7);
    }

    #[test]
    fn language_thresholds_override_common_ones() {
        let config = Config::parse(
            "[thresholds]\nlines = 50\nparameters = 3\n[thresholds.rust]\nparameters = 9\n",
            Path::new("refactor-ai.toml"),
        )
        .unwrap();
        let python = config.thresholds(Language::by_name("python").unwrap());
        let rust = config.thresholds(Language::by_name("rust").unwrap());
        assert_eq!((python.lines, python.parameters), (50, 3));
        assert_eq!((rust.lines, rust.parameters), (50, 9));
    }

    #[test]
    fn errors_name_the_file_the_key_and_what_is_allowed() {
        check_error(
            "[thresholds]\ncognitive = 3\n",
            &["dir/refactor-ai.toml", "cognitive", "cognitive_complexity"],
        );
        check_error(
            "[thresholds]\nlines = \"many\"\n",
            &["dir/refactor-ai.toml", "lines", "integer"],
        );
        check_error(
            "[rules]\nignore = [\"python/no-such-rule\"]\n",
            &["rules.ignore", "python/no-such-rule", "python/bare-except"],
        );
        check_error(
            "[rules.severity]\n\"cognitive-complexity\" = \"fatal\"\n",
            &["dir/refactor-ai.toml", "fatal", "error", "warning", "note"],
        );
    }

    #[test]
    fn select_and_ignore_pick_rules() {
        let config = Config::parse(
            "[rules]\nselect = [\"long-function\", \"cognitive-complexity\"]\nignore = [\"long-function\"]\n",
            Path::new("refactor-ai.toml"),
        )
        .unwrap();
        assert!(config.rule_enabled("cognitive-complexity"));
        assert!(!config.rule_enabled("long-function"));
        assert!(!config.rule_enabled("deep-nesting"));
    }
}
