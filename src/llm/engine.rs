//! Our own forward pass of the `llama` and `qwen2` architectures, built from candle-core's
//! ops and quantized matmuls. It replaces candle-transformers' models where their structure
//! costs time or memory on a CPU:
//!
//! - Token embeddings stay quantized and only the rows a prompt uses are dequantized
//!   (candle-transformers keeps an f32 copy of the whole table: 0.93 GB for the 1.5B model).
//! - The KV cache is allocated ahead and written in place, doubling when full, instead of a
//!   `Tensor::cat` of the whole cache on every token.
//! - Grouped-query attention multiplies each KV head with its whole group of query heads at
//!   once, instead of copying K and V once per query head.
//! - On x86-64 CPUs with AVX2 or AVX-512 VNNI, the projections run on our own kernels
//!   (`kernels.rs`), which
//!   hold each weight once, in about the file's size, for every format the catalog's models
//!   use; elsewhere, and for other formats, on candle's `QMatMul`.
//!
//! The tests below compare its logits with candle-transformers' models on small synthetic
//! models of both architectures; `tests/llm.rs` checks a real model's greedy output against
//! llama.cpp's.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Storage, Tensor};

use super::gguf::{Arch, HyperParams, metadata_usize};
use super::kernels::{self, Activations, Packed};

/// Prompt tokens fed at once (llama.cpp's micro-batch). A long prompt goes through in
/// chunks, each attending to the cache of the ones before, so its activations and attention
/// scores take a fraction of the memory: whole 512-token prompts had SmolLM2 at 1.7x
/// llama.cpp's peak memory, chunks of 32 at 1.25x. Measured cost: pp512 3% slower on the 1.5B
/// model (each chunk reads the weights again), 13% on SmolLM2, still twice llama.cpp's.
const PROMPT_CHUNK: usize = 32;

pub(crate) struct Engine {
    embeddings: Embeddings,
    embedding: usize,
    layers: Vec<Layer>,
    norm: Norm,
    output: Linear,
    rope: Rope,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    device: Device,
}

struct Layer {
    attention_norm: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Norm,
    gate: Linear,
    up: Linear,
    down: Linear,
    cache: KvCache,
}

/// `x · Wᵀ (+ b)` with a quantized `W`.
struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

enum Weight {
    /// On our kernels.
    Packed(Packed),
    /// On candle's; the tensor is kept for embedding lookups with tied weights.
    Candle(QMatMul, Arc<QTensor>),
}

impl Weight {
    /// Reads tensor `name`: packed for our kernels when they take it (read a few
    /// megabytes at a time, never whole), else as candle reads it.
    fn read<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        device: &Device,
    ) -> Result<Weight> {
        let Some(info) = content.tensor_infos.get(name) else {
            candle_core::bail!("the model has no tensor `{name}`");
        };
        if let (true, Ok((rows, columns))) = (device.is_cpu(), info.shape.dims2()) {
            reader.seek(std::io::SeekFrom::Start(
                content.tensor_data_offset + info.offset,
            ))?;
            if let Some(packed) = Packed::read(info.ggml_dtype, rows, columns, reader)? {
                return Ok(Weight::Packed(packed));
            }
        }
        Weight::candle(Arc::new(content.tensor(reader, name, device)?))
    }

    fn candle(tensor: Arc<QTensor>) -> Result<Weight> {
        Ok(Weight::Candle(QMatMul::from_arc(tensor.clone())?, tensor))
    }
}

impl Linear {
    #[cfg(test)]
    fn new(weight: Arc<QTensor>, bias: Option<Tensor>) -> Result<Linear> {
        let (rows, columns) = weight.shape().dims2()?;
        let packed = if weight.device().is_cpu() {
            Packed::new(weight.dtype(), rows, columns, &weight.data()?)
        } else {
            None
        };
        let weight = match packed {
            Some(packed) => Weight::Packed(packed),
            None => Weight::candle(weight)?,
        };
        Ok(Linear { weight, bias })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [y] = &Linear::forward_all(&[self], x)?[..] else {
            candle_core::bail!("a projection is missing");
        };
        Ok(y.clone())
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }

    /// `x` (`[tokens, columns]`) through several projections at once: on our kernels the
    /// activations are quantized once and all of them share one parallel region.
    fn forward_all(linears: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>> {
        let packed: Option<Vec<&Packed>> = linears
            .iter()
            .map(|linear| match &linear.weight {
                Weight::Packed(packed) => Some(packed),
                Weight::Candle(..) => None,
            })
            .collect();
        let outputs = match packed {
            Some(weights) => {
                let (tokens, columns) = x.dims2()?;
                let activations =
                    with_values(x, |values| Activations::quantize(values, tokens, columns))?;
                kernels::matmul(&weights, &activations)
                    .into_iter()
                    .zip(&weights)
                    .map(|(y, w)| Tensor::from_vec(y, (tokens, w.rows()), x.device()))
                    .collect::<Result<Vec<_>>>()?
            }
            None => linears
                .iter()
                .map(|linear| match &linear.weight {
                    Weight::Candle(weight, _) => weight.forward(x),
                    Weight::Packed(_) => unreachable!("all are packed or none is taken"),
                })
                .collect::<Result<Vec<_>>>()?,
        };
        linears
            .iter()
            .zip(outputs)
            .map(|(linear, y)| linear.add_bias(y))
            .collect()
    }
}

/// `f` of the values of `x`, an f32 tensor in memory.
fn with_values<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(values) = &*storage else {
        candle_core::bail!("our kernels run on the CPU only");
    };
    let start = layout.start_offset();
    Ok(f(&values.as_slice::<f32>()?[start..start + x.elem_count()]))
}

/// The token embedding table.
enum Embeddings {
    Quantized(QTensor),
    /// Tied weights: the output projection's.
    Output,
}

struct Norm {
    weight: Tensor,
    eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

/// Rotary position tables, `[positions, head_dim / 2]`, grown on demand.
struct Rope {
    base: f32,
    head_dim: usize,
    /// Llama GGUF files store Q and K rows permuted for pairwise rotation; Qwen2 rotates
    /// the two halves of each head (NeoX style).
    halves: bool,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(base: f32, head_dim: usize, halves: bool, device: &Device) -> Result<Rope> {
        let mut rope = Rope {
            base,
            head_dim,
            halves,
            cos: Tensor::zeros((0, head_dim / 2), DType::F32, device)?,
            sin: Tensor::zeros((0, head_dim / 2), DType::F32, device)?,
        };
        rope.ensure(1024, device)?;
        Ok(rope)
    }

    fn ensure(&mut self, positions: usize, device: &Device) -> Result<()> {
        let have = self.cos.dim(0)?;
        if positions <= have {
            return Ok(());
        }
        let positions = positions.max(have * 2);
        let half = self.head_dim / 2;
        let inverse: Vec<f32> = (0..half)
            .map(|i| 1.0 / self.base.powf((2 * i) as f32 / self.head_dim as f32))
            .collect();
        let mut angles = Vec::with_capacity(positions * half);
        for position in 0..positions {
            angles.extend(inverse.iter().map(|frequency| position as f32 * frequency));
        }
        let angles = Tensor::from_vec(angles, (positions, half), device)?;
        self.cos = angles.cos()?;
        self.sin = angles.sin()?;
        Ok(())
    }

    /// Rotates `x` (`[1, heads, tokens, head_dim]`, contiguous) for positions from `start`.
    fn apply(&self, x: &Tensor, start: usize) -> Result<Tensor> {
        let tokens = x.dim(2)?;
        let cos = self.cos.narrow(0, start, tokens)?;
        let sin = self.sin.narrow(0, start, tokens)?;
        if self.halves {
            candle_nn::rotary_emb::rope(x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope_i(x, &cos, &sin)
        }
    }
}

/// The keys and values of one layer, each `[kv_heads, capacity, head_dim]`; the first
/// `len` positions are valid.
struct KvCache {
    keys: Option<Tensor>,
    values: Option<Tensor>,
    len: usize,
    /// Positions the current prompt will fill: allocated at once when the cache grows.
    wanted: usize,
}

impl KvCache {
    /// Writes `keys` and `values` (`[kv_heads, tokens, head_dim]`) at `start` and returns
    /// views of positions `0..start + tokens`.
    fn append(&mut self, keys: &Tensor, values: &Tensor, start: usize) -> Result<(Tensor, Tensor)> {
        if start > self.len {
            candle_core::bail!("position {start} is past the {} cached ones", self.len);
        }
        let (kv_heads, tokens, head_dim) = keys.dims3()?;
        let end = start + tokens;
        let capacity = match &self.keys {
            Some(cached) => cached.dim(1)?,
            None => 0,
        };
        if end > capacity {
            // Grown by what is needed, in steps of 256 positions: copying the cache now and
            // then costs little next to the attention over it, and memory is what a CPU
            // with a small model runs out of first.
            let capacity = end.max(self.wanted).next_multiple_of(256);
            let grow = |old: &Option<Tensor>| -> Result<Tensor> {
                let new =
                    Tensor::zeros((kv_heads, capacity, head_dim), keys.dtype(), keys.device())?;
                if let Some(old) = old.as_ref().filter(|_| start > 0) {
                    // Head by head: each head's first positions are contiguous, no copy.
                    for head in 0..kv_heads {
                        let kept = old.narrow(0, head, 1)?.narrow(1, 0, start)?;
                        new.narrow(0, head, 1)?.slice_set(&kept, 1, 0)?;
                    }
                }
                Ok(new)
            };
            let (new_keys, new_values) = (grow(&self.keys)?, grow(&self.values)?);
            self.keys = Some(new_keys);
            self.values = Some(new_values);
        }
        let (Some(all_keys), Some(all_values)) = (&self.keys, &self.values) else {
            candle_core::bail!("the KV cache was not allocated");
        };
        all_keys.slice_set(keys, 1, start)?;
        all_values.slice_set(values, 1, start)?;
        self.len = end;
        Ok((all_keys.narrow(1, 0, end)?, all_values.narrow(1, 0, end)?))
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

impl Engine {
    /// Builds the model from a GGUF file's tensors. `params` are the hyperparameters
    /// `ModelFile::open` read and checked against the tensors' shapes.
    pub(crate) fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        arch: Arch,
        params: &HyperParams,
        device: &Device,
    ) -> Result<Engine> {
        let float = |key: &str, default: f32| -> f32 {
            content
                .metadata
                .get(&format!("{}.{key}", arch.name()))
                .and_then(|value| value.to_f32().ok())
                .unwrap_or(default)
        };
        let eps = float("attention.layer_norm_rms_epsilon", 1e-6);
        let base = float("rope.freq_base", 10_000.0);
        if let Some(scaling) = content
            .metadata
            .get(&format!("{}.rope.scaling.type", arch.name()))
            .and_then(|value| value.to_string().ok())
            .filter(|kind| kind.as_str() != "none")
        {
            candle_core::bail!("RoPE scaling `{scaling}` is not implemented");
        }
        let rotated = metadata_usize(
            &content.metadata,
            &format!("{}.rope.dimension_count", arch.name()),
        );
        if rotated.is_ok_and(|dims| dims != params.head_dim) {
            candle_core::bail!("RoPE over part of each head is not implemented");
        }
        let tensor = |reader: &mut R, name: &str| content.tensor(reader, name, device);
        let norm = |weight: QTensor| -> Result<Norm> {
            Ok(Norm {
                weight: weight.dequantize(device)?,
                eps,
            })
        };
        let vector = |weight: QTensor| weight.dequantize(device);

        let (output, embeddings) = if content.tensor_infos.contains_key("output.weight") {
            let output = Weight::read(content, reader, "output.weight", device)?;
            let table = tensor(reader, "token_embd.weight")?;
            (output, Embeddings::Quantized(table))
        } else {
            // Tied weights: the output projection is the embedding table.
            let output = Weight::read(content, reader, "token_embd.weight", device)?;
            (output, Embeddings::Output)
        };
        let output = Linear {
            weight: output,
            bias: None,
        };
        let final_norm = norm(tensor(reader, "output_norm.weight")?)?;

        let mut layers = Vec::with_capacity(params.layers);
        for index in 0..params.layers {
            let get = |reader: &mut R, name: &str| tensor(reader, &format!("blk.{index}.{name}"));
            let mut linear = |name: &str, bias: bool| -> Result<Linear> {
                let weight = Weight::read(
                    content,
                    reader,
                    &format!("blk.{index}.{name}.weight"),
                    device,
                )?;
                let bias = if bias {
                    Some(vector(get(reader, &format!("{name}.bias"))?)?)
                } else {
                    None
                };
                Ok(Linear { weight, bias })
            };
            let bias = arch.has_qkv_bias();
            let q = linear("attn_q", bias)?;
            let k = linear("attn_k", bias)?;
            let v = linear("attn_v", bias)?;
            let o = linear("attn_output", false)?;
            let gate = linear("ffn_gate", false)?;
            let up = linear("ffn_up", false)?;
            let down = linear("ffn_down", false)?;
            layers.push(Layer {
                attention_norm: norm(get(reader, "attn_norm.weight")?)?,
                q,
                k,
                v,
                o,
                ffn_norm: norm(get(reader, "ffn_norm.weight")?)?,
                gate,
                up,
                down,
                cache: KvCache {
                    keys: None,
                    values: None,
                    len: 0,
                    wanted: 0,
                },
            });
        }
        Ok(Engine {
            embeddings,
            embedding: params.embedding,
            layers,
            norm: final_norm,
            output,
            rope: Rope::new(base, params.head_dim, arch == Arch::Qwen2, device)?,
            heads: params.heads,
            kv_heads: params.kv_heads,
            head_dim: params.head_dim,
            device: device.clone(),
        })
    }

    /// Feeds `tokens` (`[1, n]`, u32) at positions `start..start + n` and returns the
    /// logits after the last one, `[1, vocab]`.
    pub(crate) fn forward(&mut self, tokens: &Tensor, start: usize) -> Result<Tensor> {
        let tokens = tokens.flatten_all()?;
        let count = tokens.dim(0)?;
        if count == 0 {
            candle_core::bail!("no tokens to process");
        }
        for layer in &mut self.layers {
            layer.cache.wanted = start + count;
        }
        let mut done = 0;
        while count - done > PROMPT_CHUNK {
            self.forward_chunk(&tokens.narrow(0, done, PROMPT_CHUNK)?, start + done)?;
            done += PROMPT_CHUNK;
        }
        self.forward_chunk(&tokens.narrow(0, done, count - done)?, start + done)
    }

    /// `forward` of at most `PROMPT_CHUNK` tokens.
    fn forward_chunk(&mut self, tokens: &Tensor, start: usize) -> Result<Tensor> {
        let count = tokens.dim(0)?;
        self.rope.ensure(start + count, &self.device)?;
        let mut x = self.embed(tokens)?;
        let mask = (count > 1)
            .then(|| causal_mask(count, start, &self.device))
            .transpose()?;
        for layer in &mut self.layers {
            let attention = attend(
                layer,
                &layer.attention_norm.forward(&x)?,
                start,
                mask.as_ref(),
                &self.rope,
                (self.heads, self.kv_heads, self.head_dim),
            )?;
            x = (x + attention)?;
            let h = layer.ffn_norm.forward(&x)?;
            let [gate, up] = &Linear::forward_all(&[&layer.gate, &layer.up], &h)?[..] else {
                candle_core::bail!("a projection is missing");
            };
            let gated = (candle_nn::ops::silu(gate)? * up)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        let last = x.narrow(0, count - 1, 1)?;
        self.output.forward(&self.norm.forward(&last)?)
    }

    /// The embeddings of `tokens` (`[n]`), `[n, embedding]`.
    fn embed(&self, tokens: &Tensor) -> Result<Tensor> {
        match (&self.embeddings, &self.output.weight) {
            (Embeddings::Quantized(table), _) => table.embedding(tokens),
            (Embeddings::Output, Weight::Packed(table)) => {
                let ids = tokens.to_vec1::<u32>()?;
                let mut values = vec![0f32; ids.len() * self.embedding];
                for (&id, row) in ids.iter().zip(values.chunks_exact_mut(self.embedding)) {
                    if id as usize >= table.rows() {
                        candle_core::bail!("token {id} is outside the vocabulary");
                    }
                    table.row(id as usize, row);
                }
                Tensor::from_vec(values, (ids.len(), self.embedding), &self.device)
            }
            (Embeddings::Output, Weight::Candle(_, table)) => table.embedding(tokens),
        }
    }

    /// Forgets the previous sequence (the cache's memory is kept for the next one).
    pub(crate) fn clear(&mut self) {
        for layer in &mut self.layers {
            layer.cache.clear();
        }
    }
}

/// Self-attention of one layer over `x` (`[tokens, embedding]`, normalised).
fn attend(
    layer: &mut Layer,
    x: &Tensor,
    start: usize,
    mask: Option<&Tensor>,
    rope: &Rope,
    (heads, kv_heads, head_dim): (usize, usize, usize),
) -> Result<Tensor> {
    let tokens = x.dim(0)?;
    // [tokens, heads * head_dim] -> [1, heads, tokens, head_dim]
    let split = |y: Tensor, count: usize| -> Result<Tensor> {
        y.reshape((tokens, count, head_dim))?
            .transpose(0, 1)?
            .contiguous()?
            .unsqueeze(0)
    };
    let [q, k, v] = &Linear::forward_all(&[&layer.q, &layer.k, &layer.v], x)?[..] else {
        candle_core::bail!("a projection is missing");
    };
    let q = rope.apply(&split(q.clone(), heads)?, start)?;
    let k = rope.apply(&split(k.clone(), kv_heads)?, start)?;
    let v = split(v.clone(), kv_heads)?;
    let (keys, values) = layer.cache.append(&k.squeeze(0)?, &v.squeeze(0)?, start)?;
    let known = start + tokens;

    // Each KV head serves `group` query heads, stored next to each other: multiply it with
    // all of them at once, `[kv_heads, group * tokens, head_dim]`.
    let group = heads / kv_heads;
    // Scaled before the product: the queries are far fewer values than the scores.
    let scale = 1.0 / (head_dim as f64).sqrt();
    let q = (q.reshape((kv_heads, group * tokens, head_dim))? * scale)?;
    let scores = q.matmul(&keys.t()?)?;
    let scores = match mask {
        Some(mask) => scores
            .reshape((kv_heads, group, tokens, known))?
            .broadcast_add(mask)?
            .reshape((kv_heads, group * tokens, known))?,
        None => scores,
    };
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    let mixed = weights.matmul(&values)?;
    // [kv_heads, group * tokens, head_dim] = [heads, tokens, head_dim] -> [tokens, heads * head_dim]
    let mixed = mixed
        .reshape((heads, tokens, head_dim))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((tokens, heads * head_dim))?;
    layer.o.forward(&mixed)
}

/// `[tokens, start + tokens]`: 0 where token `i` (at position `start + i`) may attend,
/// minus infinity after it.
fn causal_mask(tokens: usize, start: usize, device: &Device) -> Result<Tensor> {
    let known = start + tokens;
    let mask: Vec<f32> = (0..tokens)
        .flat_map(|i| {
            (0..known).map(move |j| {
                if j > start + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (tokens, known), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    fn values(tensor: &Tensor) -> Vec<f32> {
        tensor.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// A small model of `arch` with deterministic pseudo-random Q8_0 weights, as a GGUF
    /// file in memory, and its hyperparameters.
    fn synthetic(arch: Arch, embedding: usize) -> (Vec<u8>, HyperParams) {
        use candle_core::quantized::gguf_file::Value;
        let device = Device::Cpu;
        let params = HyperParams {
            layers: 2,
            heads: embedding / 32,
            kv_heads: 1,
            embedding,
            head_dim: 32,
            // As wide as the embedding's rows are: both multiples of 256 or neither.
            feed_forward: if embedding.is_multiple_of(256) {
                512
            } else {
                160
            },
            context_length: 4096,
            vocab: 64,
        };
        let mut seed = 0x2545_f491_u64;
        let mut random = |rows: usize, columns: usize, scale: f32, dtype: GgmlDType| {
            let data: Vec<f32> = (0..rows * columns)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
                })
                .collect();
            let shape = if rows == 1 {
                vec![columns]
            } else {
                vec![rows, columns]
            };
            let tensor = Tensor::from_vec(data, shape, &device).unwrap();
            QTensor::quantize(&tensor, dtype).unwrap()
        };
        let (e, f, kv) = (embedding, params.feed_forward, params.kv_heads * 32);
        let mut tensors = vec![
            (
                "token_embd.weight".to_string(),
                random(64, e, 2.0, GgmlDType::Q8_0),
            ),
            (
                "output_norm.weight".to_string(),
                random(1, e, 1.0, GgmlDType::F32),
            ),
            (
                "output.weight".to_string(),
                random(64, e, 0.5, GgmlDType::Q8_0),
            ),
        ];
        for layer in 0..params.layers {
            let mut add = |name: &str, tensor: QTensor| {
                tensors.push((format!("blk.{layer}.{name}"), tensor));
            };
            add("attn_norm.weight", random(1, e, 1.0, GgmlDType::F32));
            add("ffn_norm.weight", random(1, e, 1.0, GgmlDType::F32));
            add("attn_q.weight", random(e, e, 0.5, GgmlDType::Q8_0));
            add("attn_k.weight", random(kv, e, 0.5, GgmlDType::Q8_0));
            add("attn_v.weight", random(kv, e, 0.5, GgmlDType::Q8_0));
            add("attn_output.weight", random(e, e, 0.5, GgmlDType::Q8_0));
            add("ffn_gate.weight", random(f, e, 0.5, GgmlDType::Q8_0));
            add("ffn_up.weight", random(f, e, 0.5, GgmlDType::Q8_0));
            add("ffn_down.weight", random(e, f, 0.5, GgmlDType::Q8_0));
            if arch.has_qkv_bias() {
                add("attn_q.bias", random(1, e, 0.2, GgmlDType::F32));
                add("attn_k.bias", random(1, kv, 0.2, GgmlDType::F32));
                add("attn_v.bias", random(1, kv, 0.2, GgmlDType::F32));
            }
        }
        let key = |name: &str| format!("{}.{name}", arch.name());
        let metadata = [
            (
                "general.architecture".to_string(),
                Value::String(arch.name().into()),
            ),
            (key("attention.head_count"), Value::U32(params.heads as u32)),
            (key("attention.head_count_kv"), Value::U32(1)),
            (key("embedding_length"), Value::U32(e as u32)),
            (key("block_count"), Value::U32(2)),
            (key("context_length"), Value::U32(4096)),
            (key("rope.dimension_count"), Value::U32(32)),
            (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
            (key("rope.freq_base"), Value::F32(10_000.0)),
        ];
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let mut file = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut file, &metadata, &tensors).unwrap();
        (file.into_inner(), params)
    }

    /// Logits after a 40-token prompt and after one more token (through the KV cache),
    /// from our engine and from candle-transformers' model of the same file.
    fn both_engines(arch: Arch, embedding: usize) -> [(Vec<f32>, Vec<f32>); 2] {
        use candle_transformers::models::{quantized_llama, quantized_qwen2};
        let device = Device::Cpu;
        let (bytes, params) = synthetic(arch, embedding);
        let mut reader = std::io::Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let mut ours = Engine::load(&content, &mut reader, arch, &params, &device).unwrap();
        // Longer than a chunk: ours feeds it in two, candle-transformers' models at once.
        let ids: Vec<u32> = (0..PROMPT_CHUNK as u32 + 8)
            .map(|i| (i * 7 + 3) % 64)
            .collect();
        let length = ids.len();
        let prompt = Tensor::new(ids, &device).unwrap().unsqueeze(0).unwrap();
        let next = Tensor::new(&[[9u32]], &device).unwrap();
        let our_logits = [
            values(&ours.forward(&prompt, 0).unwrap()),
            values(&ours.forward(&next, length).unwrap()),
        ];
        let run = |forward: &mut dyn FnMut(&Tensor, usize) -> Result<Tensor>| {
            [
                values(&forward(&prompt, 0).unwrap()),
                values(&forward(&next, length).unwrap()),
            ]
        };
        let reference = match arch {
            Arch::Llama => {
                let mut model =
                    quantized_llama::ModelWeights::from_gguf(content, &mut reader, &device)
                        .unwrap();
                run(&mut |x, at| model.forward(x, at))
            }
            Arch::Qwen2 => {
                let mut model =
                    quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &device)
                        .unwrap();
                run(&mut |x, at| model.forward(x, at))
            }
        };
        let [ours_first, ours_second] = our_logits;
        let [first, second] = reference;
        [(ours_first, first), (ours_second, second)]
    }

    /// The largest difference, relative to the largest reference logit.
    fn relative_difference((ours, reference): &(Vec<f32>, Vec<f32>)) -> f32 {
        assert_eq!(ours.len(), reference.len());
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = ours
            .iter()
            .zip(reference)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        worst / scale
    }

    #[test]
    fn logits_match_candle_transformers_models() {
        for arch in Arch::ALL {
            // 256 wide: candle takes its repacked kernel, which quantizes the activations per
            // 256 values instead of per 32 as ours and llama.cpp's Q8_0 do; measured: 2.5%.
            for (step, pair) in both_engines(arch, 256).iter().enumerate() {
                let difference = relative_difference(pair);
                assert!(difference < 5e-2, "{arch:?} step {step}: {difference}");
            }
            // 96 wide: candle runs its per-row Q8_0 dot products, ours its kernels; both
            // quantize the activations per 32 values.
            for (step, pair) in both_engines(arch, 96).iter().enumerate() {
                let difference = relative_difference(pair);
                assert!(difference < 1e-4, "{arch:?} step {step}: {difference}");
            }
        }
    }

    #[test]
    fn a_rewound_cache_gives_what_a_fresh_start_gives() {
        let device = Device::Cpu;
        let (bytes, params) = synthetic(Arch::Qwen2, 256);
        let mut reader = std::io::Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let mut engine =
            Engine::load(&content, &mut reader, Arch::Qwen2, &params, &device).unwrap();
        let tokens = |ids: &[u32]| Tensor::new(ids, &device).unwrap().unsqueeze(0).unwrap();
        // A first prompt, then a second that shares its first three tokens: only the rest is
        // fed, at position 3, over the cached start (as `CandleGenerator` reuses a prefix).
        engine.forward(&tokens(&[3, 17, 42, 5, 63]), 0).unwrap();
        let reused = values(&engine.forward(&tokens(&[8, 9]), 3).unwrap());
        engine.clear();
        let fresh = values(&engine.forward(&tokens(&[3, 17, 42, 8, 9]), 0).unwrap());
        assert_eq!(reused, fresh);
    }

    #[test]
    fn a_later_chunk_sees_the_cache_and_its_own_past() {
        let mask = causal_mask(2, 1, &Device::Cpu).unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(values(&mask), [0.0, 0.0, inf, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_kv_cache_grows_in_place_and_can_be_rewound() {
        let device = Device::Cpu;
        // [kv_heads = 2, tokens, head_dim = 1]: head 1 holds the negated values.
        let rows = |from: usize, count: usize| {
            let data: Vec<f32> = (from..from + count).map(|v| v as f32).collect();
            let head = Tensor::from_vec(data, (1, count, 1), &device).unwrap();
            Tensor::cat(&[&head, &head.neg().unwrap()], 0).unwrap()
        };
        let mut cache = KvCache {
            keys: None,
            values: None,
            len: 0,
            wanted: 0,
        };
        cache.append(&rows(0, 3), &rows(100, 3), 0).unwrap();
        assert_eq!(cache.keys.as_ref().unwrap().dim(1).unwrap(), 256);
        // 300 more positions do not fit the first 256: the cache grows, keeping 0..3 of
        // both heads.
        let (keys, values_seen) = cache.append(&rows(3, 300), &rows(103, 300), 3).unwrap();
        assert_eq!(values(&keys), values(&rows(0, 303)));
        assert_eq!(values(&values_seen)[..3], [100.0, 101.0, 102.0]);
        assert_eq!(values(&values_seen)[303..306], [-100.0, -101.0, -102.0]);
        assert_eq!(cache.keys.as_ref().unwrap().dim(1).unwrap(), 512);
        // A prompt sharing the first two tokens overwrites from position 2 on.
        let (keys, _) = cache.append(&rows(50, 1), &rows(150, 1), 2).unwrap();
        assert_eq!(values(&keys), [0.0, 1.0, 50.0, -0.0, -1.0, -50.0]);
        assert_eq!(cache.len, 3);
        assert!(cache.append(&rows(0, 1), &rows(0, 1), 5).is_err(), "a gap");
    }

    #[test]
    fn projections_give_candles_product_alone_and_together() {
        let device = Device::Cpu;
        // 32 output rows of 96 inputs: 3 Q8_0 blocks per row, not a multiple of 256.
        let weights: Vec<f32> = (0..32 * 96)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let weights = Tensor::from_vec(weights, (32, 96), &device).unwrap();
        let quantized = Arc::new(QTensor::quantize(&weights, GgmlDType::Q8_0).unwrap());
        let candle = QMatMul::from_arc(quantized.clone()).unwrap();
        let linear = Linear::new(quantized, None).unwrap();
        assert_eq!(
            matches!(linear.weight, Weight::Packed(_)),
            kernels::available()
        );
        let x: Vec<f32> = (0..4 * 96)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let x = Tensor::from_vec(x, (4, 96), &device).unwrap();
        let expected = values(&candle.forward(&x).unwrap());
        let actual = values(&linear.forward(&x).unwrap());
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (e, a) in expected.iter().zip(&actual) {
            // Both quantize the activations to 8 bits per 32 values.
            assert!((e - a).abs() <= 1e-5 * scale, "{e} vs {a}");
        }
        // Several projections at once give what each gives alone.
        let one = x.narrow(0, 0, 1).unwrap();
        let fused = Linear::forward_all(&[&linear, &linear], &one).unwrap();
        assert_eq!(values(&fused[1]), values(&linear.forward(&one).unwrap()));
    }
}
