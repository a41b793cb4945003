//! Parsing with tree-sitter: one parser per language per thread, a time limit, and parsing
//! of sub-ranges (macro bodies) with positions kept file-absolute.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tree_sitter::{ParseOptions, Parser, Tree};

use crate::lang::Language;

/// A parse taking longer than this is abandoned with a diagnostic (tree-sitter parses
/// megabytes per second, so only pathological input gets here).
const PARSE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// One parser per language, reused for every file a thread analyses.
#[derive(Default)]
pub(crate) struct Parsers {
    parsers: HashMap<usize, Parser>,
}

impl Parsers {
    pub(super) fn parse(&mut self, language: &Language, text: &str) -> Result<Tree, String> {
        self.parse_ranges(language, text, &[])
    }

    /// Parses only `range` of `text` (positions stay those of the whole file).
    pub(super) fn parse_range(
        &mut self,
        language: &Language,
        text: &str,
        range: tree_sitter::Range,
    ) -> Result<Tree, String> {
        self.parse_ranges(language, text, &[range])
    }

    fn parse_ranges(
        &mut self,
        language: &Language,
        text: &str,
        ranges: &[tree_sitter::Range],
    ) -> Result<Tree, String> {
        let parser = match self.parsers.entry(language.index()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let mut parser = Parser::new();
                parser
                    .set_language(&(language.grammar)())
                    .map_err(|error| {
                        format!("cannot load the {} grammar: {error}", language.name)
                    })?;
                entry.insert(parser)
            }
        };
        // An empty list means the whole text.
        parser
            .set_included_ranges(ranges)
            .map_err(|_| "skipped: invalid range to parse".to_string())?;
        let started = Instant::now();
        let bytes = text.as_bytes();
        let mut give_up = |_: &tree_sitter::ParseState| {
            if started.elapsed() > PARSE_TIME_LIMIT {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut give_up)),
        );
        // A cancelled parse leaves state behind; the next parse must start fresh.
        parser.reset();
        let _ = parser.set_included_ranges(&[]);
        tree.ok_or_else(|| {
            format!(
                "skipped: parsing took longer than {} s",
                PARSE_TIME_LIMIT.as_secs()
            )
        })
    }
}
