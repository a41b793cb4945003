//! `models bench`: how fast a model runs here, measured the way llama.cpp's `llama-bench`
//! does, so the figures compare: prompt processing of N tokens in one batch from an empty
//! context (`pp512`), and generation of N tokens one at a time from an empty context
//! (`tg128`), each repeated and reported as the median.

use std::time::Instant;

use serde::Serialize;

use super::candle::CandleGenerator;

#[derive(Clone, Copy, Debug)]
pub(crate) struct BenchSpec {
    pub(crate) prompt_tokens: usize,
    pub(crate) generation_tokens: usize,
    pub(crate) repetitions: usize,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct BenchResult {
    pub(crate) prompt_tokens: usize,
    pub(crate) generation_tokens: usize,
    pub(crate) repetitions: usize,
    pub(crate) prompt_tokens_per_second: f64,
    pub(crate) generation_tokens_per_second: f64,
}

/// Token ids spread over the vocabulary, the same on every run (llama-bench feeds random
/// ids too: speed does not depend on which tokens they are).
fn bench_tokens(count: usize, vocab: usize) -> Vec<u32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % vocab.max(1) as u64) as u32
        })
        .collect()
}

pub(crate) fn run(
    generator: &mut CandleGenerator,
    spec: BenchSpec,
) -> Result<BenchResult, candle_core::Error> {
    let vocab = generator.tokenizer().inner.get_vocab_size(true);
    let prompt = bench_tokens(
        spec.prompt_tokens.min(generator.context_length() - 1),
        vocab,
    );
    let repetitions = spec.repetitions.max(1);

    let mut prompt_rates = Vec::with_capacity(repetitions);
    if !prompt.is_empty() {
        for _ in 0..repetitions {
            generator.reset();
            let started = Instant::now();
            generator.forward(&prompt, 0)?;
            prompt_rates.push(prompt.len() as f64 / started.elapsed().as_secs_f64());
        }
    }

    let generation_tokens = spec
        .generation_tokens
        .min(generator.context_length().saturating_sub(1));
    let mut generation_rates = Vec::with_capacity(repetitions);
    if generation_tokens > 0 {
        let tokens = bench_tokens(generation_tokens, vocab);
        for _ in 0..repetitions {
            generator.reset();
            let started = Instant::now();
            for (position, &token) in tokens.iter().enumerate() {
                generator.forward(&[token], position)?;
            }
            generation_rates.push(generation_tokens as f64 / started.elapsed().as_secs_f64());
        }
    }
    generator.reset();
    Ok(BenchResult {
        prompt_tokens: prompt.len(),
        generation_tokens,
        repetitions,
        prompt_tokens_per_second: median(&mut prompt_rates),
        generation_tokens_per_second: median(&mut generation_rates),
    })
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The peak resident memory of this process so far (`VmHWM`), where the system says.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_tokens_are_fixed_and_inside_the_vocabulary() {
        let tokens = bench_tokens(512, 49_152);
        assert_eq!(tokens, bench_tokens(512, 49_152));
        assert!(tokens.iter().all(|&t| t < 49_152));
        let distinct: std::collections::BTreeSet<_> = tokens.iter().collect();
        assert!(distinct.len() > 500);
    }

    #[test]
    fn median_of_odd_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
