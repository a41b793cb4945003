//! Text generation behind one small trait. [`Generator`] turns a prompt (plain text or chat
//! messages) and [`Params`] into text, streaming each piece to a callback and stopping when a
//! cancel flag is set. Two implementations: [`candle::CandleGenerator`] runs a quantized GGUF
//! model on this machine, [`fake::FakeGenerator`] replays scripted answers for tests of the
//! stages that come after generation. Nothing outside this module imports candle or
//! tokenizers.

pub(crate) mod bench;
pub(crate) mod candle;
pub(crate) mod convert;
mod engine;
pub(crate) mod fake;
pub(crate) mod gguf;
mod kernels;
pub(crate) mod template;
pub(crate) mod threads;
pub(crate) mod tokenizer;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

/// Who said a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) role: Role,
    pub(crate) content: String,
}

impl Message {
    pub(crate) fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// What the model continues: raw text, or a conversation rendered through the model's own
/// chat template.
#[derive(Clone, Debug)]
pub(crate) enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

/// What to do when the prompt does not leave room for generation in the model's context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Stop with [`GenerateError::PromptTooLong`].
    #[default]
    Error,
    /// Drop tokens from the start of the prompt until it fits.
    TruncateStart,
}

/// How to generate. The default is greedy decoding of up to 256 tokens.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) max_tokens: usize,
    /// 0 means greedy (always the most likely token).
    pub(crate) temperature: f64,
    /// Keep only the `top_k` most likely tokens before sampling (0: all).
    pub(crate) top_k: usize,
    /// Keep the smallest set of tokens whose probabilities add up to `top_p` (1: all).
    pub(crate) top_p: f64,
    /// Divides the logits of tokens seen in the last `repeat_last_n` tokens (1: off).
    pub(crate) repeat_penalty: f32,
    pub(crate) repeat_last_n: usize,
    /// The same seed, prompt and parameters give the same text.
    pub(crate) seed: u64,
    /// Generation stops before any of these strings; the text returned ends before it.
    pub(crate) stop: Vec<String>,
    pub(crate) overflow: Overflow,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            max_tokens: 256,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 299_792_458,
            stop: Vec::new(),
            overflow: Overflow::Error,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StopReason {
    /// The model produced one of its end-of-turn tokens.
    EndOfText,
    /// The text reached one of the caller's stop strings.
    StopString,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
    /// The caller set the cancel flag.
    Cancelled,
}

/// What one call produced.
#[derive(Clone, Debug)]
pub(crate) struct Generation {
    pub(crate) text: String,
    /// The generated token ids (empty for generators without a tokenizer).
    pub(crate) tokens: Vec<u32>,
    pub(crate) prompt_tokens: usize,
    /// Of those, how many the model did not process again: the start this prompt shares
    /// with the previous one, whose keys and values were still cached.
    pub(crate) reused_tokens: usize,
    pub(crate) stop_reason: StopReason,
    /// Seconds spent on the prompt and on generating.
    pub(crate) prompt_seconds: f64,
    pub(crate) generation_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum GenerateError {
    #[error(
        "the prompt is {prompt_tokens} tokens but the model's context holds {context} \
         (and generation needs room for at least one more); shorten the input or pick a \
         model with a longer context"
    )]
    PromptTooLong {
        prompt_tokens: usize,
        context: usize,
    },
    #[error("the chat template of {model} failed: {message}")]
    Template { model: String, message: String },
    #[error("tokenizing the prompt failed: {0}")]
    Tokenize(String),
    #[error("the model failed while generating: {0}")]
    Model(String),
    #[error("{0}")]
    Other(String),
}

/// Something that continues a prompt. Implementations stream each new piece of text to
/// `on_text` as soon as it is complete UTF-8, and check `cancel` between tokens.
pub(crate) trait Generator {
    /// A short name for messages and reports (the model id or file name).
    fn name(&self) -> &str;

    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation, GenerateError>;
}

/// The earliest position in `text` where one of `stops` begins, searching only where a stop
/// could begin after `from` (text before it was already checked).
pub(crate) fn find_stop(text: &str, stops: &[String], from: usize) -> Option<usize> {
    stops
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| {
            let start = floor_char_boundary(text, from.saturating_sub(stop.len()));
            text[start..].find(stop.as_str()).map(|at| start + at)
        })
        .min()
}

/// How many bytes at the end of `text` could be the start of a stop string, so must be held
/// back from streaming until more text arrives.
pub(crate) fn stop_prefix_len(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|stop| {
            (1..stop.len().min(text.len() + 1))
                .rev()
                .filter(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
                .take(1)
        })
        .max()
        .unwrap_or(0)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stop_strings_are_found_across_pieces() {
        let list = stops(&["```", "END"]);
        assert_eq!(find_stop("def f():\n```", &list, 10), Some(9));
        assert_eq!(find_stop("no stop here", &list, 0), None);
        assert_eq!(find_stop("aEND ``` ", &list, 0), Some(1));
        assert_eq!(find_stop("héllo END", &list, 3), Some(7));
    }

    #[test]
    fn a_partial_stop_at_the_end_is_held_back() {
        let list = stops(&["```", "END"]);
        assert_eq!(stop_prefix_len("text ``", &list), 2);
        assert_eq!(stop_prefix_len("text E", &list), 1);
        assert_eq!(stop_prefix_len("text", &list), 0);
        assert_eq!(stop_prefix_len("", &list), 0);
    }
}
