//! [`FakeGenerator`]: answers from a script, for tests of what happens after generation
//! (parsing a proposal, applying it, validating it). It never stands in for a test of a
//! model: those load a real GGUF file.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{GenerateError, Generation, Generator, Params, Prompt, StopReason, find_stop};

pub(crate) struct FakeGenerator {
    answers: VecDeque<String>,
    /// Every prompt it was given, in order, for tests to inspect.
    pub(crate) prompts: Vec<Prompt>,
}

impl FakeGenerator {
    pub(crate) fn new<I, S>(answers: I) -> FakeGenerator
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FakeGenerator {
            answers: answers.into_iter().map(Into::into).collect(),
            prompts: Vec::new(),
        }
    }
}

impl FakeGenerator {
    /// Answers from a JSON file holding an array of strings, in order.
    pub(crate) fn from_file(path: &std::path::Path) -> anyhow::Result<FakeGenerator> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the replay file {}", path.display()))?;
        let answers: Vec<String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} must be a JSON array of answers (strings)",
                path.display()
            )
        })?;
        Ok(FakeGenerator::new(answers))
    }
}

impl Generator for FakeGenerator {
    fn name(&self) -> &str {
        "replay"
    }

    /// The next scripted answer, cut at the first stop string and at `max_tokens`
    /// whitespace-separated words, streamed word by word.
    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation, GenerateError> {
        self.prompts.push(prompt.clone());
        let mut answer = self.answers.pop_front().ok_or_else(|| {
            GenerateError::Other("the fake generator has no scripted answer left".into())
        })?;
        let mut stop_reason = StopReason::EndOfText;
        if let Some(at) = find_stop(&answer, &params.stop, 0) {
            answer.truncate(at);
            stop_reason = StopReason::StopString;
        }
        let mut text = String::new();
        for (count, word) in answer.split_inclusive(char::is_whitespace).enumerate() {
            if cancel.load(Ordering::Relaxed) {
                stop_reason = StopReason::Cancelled;
                break;
            }
            if count >= params.max_tokens {
                stop_reason = StopReason::MaxTokens;
                break;
            }
            on_text(word);
            text.push_str(word);
        }
        Ok(Generation {
            text,
            tokens: Vec::new(),
            prompt_tokens: 0,
            reused_tokens: 0,
            stop_reason,
            prompt_seconds: 0.0,
            generation_seconds: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fake: &mut FakeGenerator, params: &Params) -> (Generation, String) {
        let mut streamed = String::new();
        let generation = fake
            .generate(
                &Prompt::Text("p".into()),
                params,
                &mut |piece| streamed.push_str(piece),
                &AtomicBool::new(false),
            )
            .expect("a scripted answer");
        (generation, streamed)
    }

    #[test]
    fn answers_come_in_order_cut_at_stops_and_limits() {
        let mut fake = FakeGenerator::new(["one two three", "code\n```\ntrailer"]);
        let params = Params {
            max_tokens: 2,
            ..Params::default()
        };
        let (first, streamed) = run(&mut fake, &params);
        assert_eq!(
            (first.text.as_str(), first.stop_reason),
            ("one two ", StopReason::MaxTokens)
        );
        assert_eq!(streamed, "one two ");
        let params = Params {
            stop: vec!["```".into()],
            ..Params::default()
        };
        let (second, _) = run(&mut fake, &params);
        assert_eq!(
            (second.text.as_str(), second.stop_reason),
            ("code\n", StopReason::StopString)
        );
        assert!(
            fake.generate(
                &Prompt::Text("p".into()),
                &params,
                &mut |_| {},
                &AtomicBool::new(false)
            )
            .is_err()
        );
        assert_eq!(fake.prompts.len(), 3);
    }
}
