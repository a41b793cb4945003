//! [`CandleGenerator`]: a quantized GGUF model run by candle on the CPU. Loading converts
//! slow-kernel tensors once (see `convert.rs`), builds the tokenizer and chat template from
//! the file, and runs one tiny forward pass so the first real one does not pay for weight
//! repacking.

use std::fs::File;
use std::io::BufReader;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use super::convert::{self, Conversion};
use super::engine::Engine;
use super::gguf::{Arch, GgufError, ModelFile, metadata_string};
use super::kernels;
use super::template::ChatTemplate;
use super::tokenizer::{GgufTokenizer, TokenizerError};
use super::{
    GenerateError, Generation, Generator, Overflow, Params, Prompt, StopReason, find_stop,
    stop_prefix_len,
};

/// Prompt tokens per forward pass: bounds the attention scratch memory of long prompts.
const PROMPT_CHUNK: usize = 512;

enum Weights {
    Own(Engine),
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Own(engine) => engine.forward(input, position),
            Weights::Llama(model) => model.forward(input, position),
            Weights::Qwen2(model) => model.forward(input, position),
        }
    }

    fn clear(&mut self) {
        match self {
            Weights::Own(engine) => engine.clear(),
            Weights::Llama(model) => model.clear_kv_cache(),
            Weights::Qwen2(model) => model.clear_kv_cache(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the model's chat template does not compile: {0}")]
    Template(String),
    #[error(transparent)]
    Convert(#[from] convert::ConvertError),
    #[error("candle could not load {file}: {message}")]
    Candle { file: String, message: String },
}

/// How loading went, for `models bench` and `--verbose` output.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct LoadReport {
    /// Seconds from opening the file to a warmed-up model, conversion included.
    pub(crate) seconds: f64,
    pub(crate) warm_up_seconds: f64,
    pub(crate) conversion: Option<Conversion>,
    pub(crate) template_is_fallback: bool,
}

pub(crate) struct CandleGenerator {
    name: String,
    weights: Weights,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    context: usize,
    device: Device,
    /// The tokens whose keys and values the model holds, in order.
    cached: Vec<u32>,
    pub(crate) load: LoadReport,
}

impl CandleGenerator {
    /// Loads `model`. With `convert`, tensors candle runs slowly are converted to Q8_0 into
    /// `cache_dir` (once; see `convert.rs`): several times faster, but the numbers differ
    /// slightly from the file's, so a small model's greedy output can differ from llama.cpp's
    /// on the same file.
    pub(crate) fn load(
        model: &ModelFile,
        name: &str,
        cache_dir: Option<&Path>,
        convert: bool,
    ) -> Result<CandleGenerator, LoadError> {
        let started = Instant::now();
        let tokenizer = GgufTokenizer::from_metadata(model.metadata())?;
        let template_source = metadata_string(model.metadata(), "tokenizer.chat_template").ok();
        let token_text = |token: &Option<(u32, String)>| {
            token
                .as_ref()
                .map(|(_, text)| text.clone())
                .unwrap_or_default()
        };
        let template = ChatTemplate::new(
            template_source.as_deref(),
            &token_text(&tokenizer.bos),
            &token_text(&tokenizer.eos),
        )
        .map_err(LoadError::Template)?;

        let device = device();
        // Our kernels run the formats candle leaves scalar, in their own size: converting
        // would only make the weights larger.
        let convert =
            convert && !(engine() == EngineKind::Own && device.is_cpu() && kernels::available());
        let converted = match cache_dir.filter(|_| convert) {
            Some(dir) => convert::prepare(model, dir)?,
            None => None,
        };
        let (source, conversion) = match &converted {
            Some((file, conversion)) => (file, Some(conversion.clone())),
            None => (model, None),
        };
        let weights = read_weights(source, &device)?;
        let context = model.arch.max_context(model.params.context_length);
        let mut generator = CandleGenerator {
            name: name.to_string(),
            weights,
            tokenizer,
            template,
            context,
            device,
            cached: Vec::new(),
            load: LoadReport {
                seconds: 0.0,
                warm_up_seconds: 0.0,
                conversion,
                template_is_fallback: template_source.is_none(),
            },
        };
        let warm_up = Instant::now();
        generator.warm_up().map_err(|error| LoadError::Candle {
            file: model.display_name(),
            message: format!("warm-up pass: {error}"),
        })?;
        generator.load.warm_up_seconds = warm_up.elapsed().as_secs_f64();
        generator.load.seconds = started.elapsed().as_secs_f64();
        Ok(generator)
    }

    /// `cpu`, `cuda` or `metal`: where the weights are.
    pub(crate) fn device_name(&self) -> &'static str {
        match self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        }
    }

    pub(crate) fn context_length(&self) -> usize {
        self.context
    }

    pub(crate) fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The text the model sees for `prompt`: chat messages go through its template.
    pub(crate) fn prompt_text(&self, prompt: &Prompt) -> Result<String, GenerateError> {
        match prompt {
            Prompt::Text(text) => Ok(text.clone()),
            Prompt::Chat(messages) => {
                self.template
                    .render(messages)
                    .map_err(|message| GenerateError::Template {
                        model: self.name.clone(),
                        message,
                    })
            }
        }
    }

    /// One multi-token and one single-token pass: candle repacks each weight on its first
    /// matmul, which would otherwise land on the user's first prompt.
    fn warm_up(&mut self) -> candle_core::Result<()> {
        self.forward(&[0, 1], 0)?;
        self.forward(&[2], 2)?;
        self.reset();
        Ok(())
    }

    /// Feeds `tokens` at `position` and returns the logits after the last one.
    pub(crate) fn forward(
        &mut self,
        tokens: &[u32],
        position: usize,
    ) -> candle_core::Result<Tensor> {
        // What lies from `position` on is overwritten, whether or not this pass succeeds.
        self.cached.truncate(position);
        let mut logits = None;
        for (index, chunk) in tokens.chunks(PROMPT_CHUNK).enumerate() {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            logits = Some(
                self.weights
                    .forward(&input, position + index * PROMPT_CHUNK)?,
            );
        }
        self.cached.extend_from_slice(tokens);
        match logits {
            Some(logits) => logits.squeeze(0)?.to_dtype(candle_core::DType::F32),
            None => candle_core::bail!("no tokens to process"),
        }
    }

    /// Forgets the previous sequence.
    pub(crate) fn reset(&mut self) {
        self.weights.clear();
        self.cached.clear();
    }

    /// How many of `ids`' first tokens are cached already, from the previous prompt and
    /// its answer: prompts of one run share their instructions. Our engine only (it can
    /// overwrite its cache from any position); the last token is always fed again, for
    /// its logits.
    fn reusable_prefix(&self, ids: &[u32]) -> usize {
        if !matches!(self.weights, Weights::Own(_)) {
            return 0;
        }
        let common = self
            .cached
            .iter()
            .zip(ids)
            .take_while(|(cached, id)| cached == id)
            .count();
        common.min(ids.len().saturating_sub(1))
    }
}

/// `ids` if they leave room for at least one generated token in `context`; else an error,
/// or (with [`Overflow::TruncateStart`]) their last part, leaving room for `max_tokens` (at
/// most half the context).
fn fit_prompt(
    mut ids: Vec<u32>,
    context: usize,
    params: &Params,
) -> Result<Vec<u32>, GenerateError> {
    if ids.len() < context {
        return Ok(ids);
    }
    match params.overflow {
        Overflow::Error => Err(GenerateError::PromptTooLong {
            prompt_tokens: ids.len(),
            context,
        }),
        Overflow::TruncateStart => {
            let room = params.max_tokens.clamp(1, (context / 2).max(1));
            let keep = context.saturating_sub(room);
            ids.drain(..ids.len() - keep);
            Ok(ids)
        }
    }
}

/// The GPU when this binary was built with the `cuda` or `metal` feature and the machine
/// has one, else the CPU (without the feature, candle's constructors return an error).
fn device() -> Device {
    Device::new_cuda(0)
        .or_else(|_| Device::new_metal(0))
        .unwrap_or(Device::Cpu)
}

/// Which code runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EngineKind {
    /// Ours (`engine.rs`): the default.
    Own,
    /// candle-transformers' models, the reference ours is checked against;
    /// `REFACTOR_AI_ENGINE=candle-transformers` selects it.
    Reference,
}

fn engine() -> EngineKind {
    match std::env::var("REFACTOR_AI_ENGINE").as_deref() {
        Ok("candle-transformers") => EngineKind::Reference,
        _ => EngineKind::Own,
    }
}

fn read_weights(model: &ModelFile, device: &Device) -> Result<Weights, LoadError> {
    let candle_error = |message: String| LoadError::Candle {
        file: model.display_name(),
        message,
    };
    let file = File::open(&model.path).map_err(|source| GgufError::Open {
        path: model.path.clone(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    // The header was read and checked already; re-read it here because candle's loaders
    // take the parsed header by value.
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader)
        .map_err(|error| candle_error(error.to_string()))?;
    // candle returns errors for what it expects to go wrong; the guard turns anything else
    // (an index out of range on a file the header check did not foresee) into an error too.
    let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| match (engine(), model.arch) {
        (EngineKind::Own, arch) => {
            Engine::load(&content, &mut reader, arch, &model.params, device).map(Weights::Own)
        }
        (EngineKind::Reference, Arch::Llama) => {
            quantized_llama::ModelWeights::from_gguf(content, &mut reader, device)
                .map(Weights::Llama)
        }
        (EngineKind::Reference, Arch::Qwen2) => {
            quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, device)
                .map(Weights::Qwen2)
        }
    }));
    match loaded {
        Ok(Ok(weights)) => Ok(weights),
        Ok(Err(error)) => Err(candle_error(error.to_string())),
        Err(_) => Err(candle_error(
            "the loader panicked; the file is malformed".into(),
        )),
    }
}

impl Generator for CandleGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation, GenerateError> {
        let model_error = |error: candle_core::Error| GenerateError::Model(error.to_string());
        let text = self.prompt_text(prompt)?;
        let ids = self
            .tokenizer
            .encode(&text)
            .map_err(GenerateError::Tokenize)?;
        let ids = fit_prompt(ids, self.context, params)?;
        let prompt_started = Instant::now();
        let reused = self.reusable_prefix(&ids);
        if reused == 0 {
            self.reset();
        }
        let mut logits = self.forward(&ids[reused..], reused).map_err(model_error)?;
        let prompt_seconds = prompt_started.elapsed().as_secs_f64();

        let generation_started = Instant::now();
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut history = ids.clone();
        let mut tokens: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut streamed = 0;
        let mut position = ids.len();
        let stop_reason = loop {
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if tokens.len() >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if position >= self.context {
                break StopReason::ContextFull;
            }
            if params.repeat_penalty != 1.0 {
                let start = history.len().saturating_sub(params.repeat_last_n);
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    params.repeat_penalty,
                    &history[start..],
                )
                .map_err(model_error)?;
            }
            let next = sampler.sample(&logits).map_err(model_error)?;
            if self.tokenizer.end_ids.contains(&next) {
                break StopReason::EndOfText;
            }
            tokens.push(next);
            history.push(next);
            let decoded = self
                .tokenizer
                .decode(&tokens)
                .map_err(GenerateError::Tokenize)?;
            // A token can end inside a multi-byte character; wait for the rest.
            if !decoded.ends_with('\u{FFFD}') {
                let checked = text.len();
                text = decoded;
                if let Some(at) = find_stop(&text, &params.stop, checked) {
                    text.truncate(at);
                    if at > streamed {
                        on_text(&text[streamed..]);
                    }
                    streamed = text.len();
                    break StopReason::StopString;
                }
                let ready = text.len() - stop_prefix_len(&text, &params.stop);
                if ready > streamed && text.is_char_boundary(ready) {
                    on_text(&text[streamed..ready]);
                    streamed = ready;
                }
            }
            logits = self.forward(&[next], position).map_err(model_error)?;
            position += 1;
        };
        if stop_reason != StopReason::StopString && streamed < text.len() {
            on_text(&text[streamed..]);
        }
        Ok(Generation {
            text,
            tokens,
            prompt_tokens: ids.len(),
            reused_tokens: reused,
            stop_reason,
            prompt_seconds,
            generation_seconds: generation_started.elapsed().as_secs_f64(),
        })
    }
}

fn sampling(params: &Params) -> Sampling {
    if params.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = params.temperature;
    let top_p = (params.top_p < 1.0).then_some(params.top_p);
    match (params.top_k, top_p) {
        (0, None) => Sampling::All { temperature },
        (0, Some(p)) => Sampling::TopP { p, temperature },
        (k, None) => Sampling::TopK { k, temperature },
        (k, Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_that_do_not_fit_fail_or_lose_their_start() {
        let ids: Vec<u32> = (0..10).collect();
        let params = Params {
            max_tokens: 3,
            ..Params::default()
        };
        assert_eq!(fit_prompt(ids.clone(), 11, &params).ok(), Some(ids.clone()));
        let error = fit_prompt(ids.clone(), 10, &params).map_err(|e| e.to_string());
        assert_eq!(
            error
                .err()
                .as_deref()
                .map(|e| e.starts_with("the prompt is 10 tokens but the model's context holds 10")),
            Some(true)
        );
        let truncate = Params {
            overflow: Overflow::TruncateStart,
            ..params
        };
        assert_eq!(
            fit_prompt(ids.clone(), 8, &truncate).ok(),
            Some((5..10).collect())
        );
        // Room for the answer is at most half the context.
        let long_answer = Params {
            max_tokens: 100,
            ..truncate
        };
        assert_eq!(
            fit_prompt(ids, 8, &long_answer).ok(),
            Some((6..10).collect())
        );
    }
}
