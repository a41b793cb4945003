//! The tokenizer, built from the GGUF metadata alone (`tokenizer.ggml.*`), so a model file is
//! all a user needs. Both catalog families are GPT-2-style byte-level BPE; they differ in how
//! text is split before BPE (`tokenizer.ggml.pre`), and that split must match the one the
//! model was trained with, or ids drift from llama.cpp's on digits, spaces and newlines.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::gguf::{GgufError, metadata_string};

/// Token types in `tokenizer.ggml.token_type`, as llama.cpp numbers them.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Qwen2's split: contractions, letters with one leading non-letter, single digits,
/// punctuation runs, newline runs, and whitespace that leaves the last space to the next word.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split: as Qwen2's, but digits in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizers this build knows, by their `tokenizer.ggml.pre` name.
const SUPPORTED_PRE: [&str; 5] = ["qwen2", "smollm", "llama-bpe", "gpt2", "default"];

/// A tokenizer with the model's special tokens.
pub(crate) struct GgufTokenizer {
    pub(crate) inner: Tokenizer,
    /// Ids that end a turn or the text: `tokenizer.ggml.eos_token_id`, `eot_token_id` and the
    /// usual end markers present in the vocabulary.
    pub(crate) end_ids: Vec<u32>,
    pub(crate) bos: Option<(u32, String)>,
    pub(crate) eos: Option<(u32, String)>,
    pub(crate) add_bos: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenizerError {
    #[error(transparent)]
    Metadata(#[from] GgufError),
    #[error(
        "the model's tokenizer is `{0}`; this build reads byte-level BPE (`gpt2`) tokenizers only"
    )]
    Model(String),
    #[error(
        "the model's pre-tokenizer `{0}` is not supported; this build knows {known}",
        known = SUPPORTED_PRE.join(", ")
    )]
    Pre(String),
    #[error("the tokenizer in the model's metadata is invalid: {0}")]
    Build(String),
}

impl GgufTokenizer {
    pub(crate) fn from_metadata(
        metadata: &HashMap<String, Value>,
    ) -> Result<GgufTokenizer, TokenizerError> {
        let model = metadata_string(metadata, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(TokenizerError::Model(model));
        }
        let pre =
            metadata_string(metadata, "tokenizer.ggml.pre").unwrap_or_else(|_| "default".into());
        let tokens = string_array(metadata, "tokenizer.ggml.tokens")?;
        let merges = string_array(metadata, "tokenizer.ggml.merges")?;
        let types = int_array(metadata, "tokenizer.ggml.token_type")?;

        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| ((*token).clone(), id as u32))
            .collect();
        let merges = merges
            .iter()
            .map(|merge| {
                merge
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| TokenizerError::Build(format!("merge `{merge}` has no space")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|error| TokenizerError::Build(error.to_string()))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer(&pre)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        // Control and user-defined tokens are matched whole in the input, as llama.cpp does
        // when it parses special tokens: `<|im_start|>` is one id, never `<`, `|`, ...
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(types.iter().chain(std::iter::repeat(&1)))
            .filter(|&(_, &kind)| kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_USER_DEFINED)
            .map(|(token, &kind)| {
                AddedToken::from((*token).clone(), kind == TOKEN_TYPE_CONTROL).normalized(false)
            })
            .collect();
        inner
            .add_special_tokens(added)
            .map_err(|error| TokenizerError::Build(error.to_string()))?;

        let id = |key: &str| {
            super::gguf::metadata_usize(metadata, key)
                .ok()
                .and_then(|id| tokens.get(id).map(|text| (id as u32, (*text).clone())))
        };
        let bos = id("tokenizer.ggml.bos_token_id");
        let eos = id("tokenizer.ggml.eos_token_id");
        let mut end_ids: Vec<u32> = [eos.clone(), id("tokenizer.ggml.eot_token_id")]
            .into_iter()
            .flatten()
            .map(|(id, _)| id)
            .collect();
        for marker in [
            "<|im_end|>",
            "<|endoftext|>",
            "<|eot_id|>",
            "<|end_of_text|>",
        ] {
            if let Some(id) = inner.token_to_id(marker) {
                end_ids.push(id);
            }
        }
        end_ids.sort_unstable();
        end_ids.dedup();
        let add_bos = matches!(
            metadata.get("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(true))
        );
        Ok(GgufTokenizer {
            inner,
            end_ids,
            bos,
            eos,
            add_bos,
        })
    }

    /// The ids of `text`, special tokens in it matched whole, plus BOS when the model asks for
    /// one.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|error| error.to_string())?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if self.add_bos
            && let Some((bos, _)) = &self.bos
        {
            ids.push(*bos);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// The text of `ids`, special tokens included (the generator never passes an end token).
    pub(crate) fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner
            .decode(ids, false)
            .map_err(|error| error.to_string())
    }
}

fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper, TokenizerError> {
    let split = |regex: &str| -> Result<PreTokenizerWrapper, TokenizerError> {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|error| TokenizerError::Build(error.to_string()))?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ])
        .into())
    };
    match pre {
        "qwen2" => split(QWEN2_SPLIT),
        "llama-bpe" => split(LLAMA3_SPLIT),
        // SmolLM2: every digit alone, then GPT-2's own split, with no prefix space.
        "smollm" => Ok(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, false, true).into(),
        ])
        .into()),
        "gpt2" | "default" => Ok(ByteLevel::new(false, false, true).into()),
        other => Err(TokenizerError::Pre(other.to_string())),
    }
}

fn string_array<'a>(
    metadata: &'a HashMap<String, Value>,
    key: &str,
) -> Result<Vec<&'a String>, GgufError> {
    let missing = || GgufError::Metadata {
        key: key.to_string(),
    };
    let Some(Value::Array(values)) = metadata.get(key) else {
        return Err(missing());
    };
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => Ok(text),
            _ => Err(missing()),
        })
        .collect()
}

fn int_array(metadata: &HashMap<String, Value>, key: &str) -> Result<Vec<i32>, GgufError> {
    let Some(Value::Array(values)) = metadata.get(key) else {
        return Ok(Vec::new());
    };
    values
        .iter()
        .map(|value| match value {
            Value::I32(v) => Ok(*v),
            Value::U32(v) => Ok(*v as i32),
            Value::I8(v) => Ok(i32::from(*v)),
            Value::U8(v) => Ok(i32::from(*v)),
            _ => Err(GgufError::Metadata {
                key: key.to_string(),
            }),
        })
        .collect()
}
