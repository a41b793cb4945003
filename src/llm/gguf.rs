//! Reading a GGUF file's header: the architecture, the hyperparameters the memory estimate
//! and the loader need, and a check of every tensor the loader will ask for (present, right
//! shape, a quantization candle can run, inside the file) so that a truncated or foreign
//! file is a clear error before any weight is read.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, Value};

/// The architectures this binary can run, by their GGUF `general.architecture` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    pub(crate) const ALL: [Arch; 2] = [Arch::Llama, Arch::Qwen2];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Arch, GgufError> {
        Arch::ALL
            .into_iter()
            .find(|arch| arch.name() == name)
            .ok_or_else(|| GgufError::UnsupportedArch {
                found: name.to_string(),
            })
    }

    /// Attention projections carry a bias (Qwen2 does, Llama does not).
    pub(crate) fn has_qkv_bias(self) -> bool {
        matches!(self, Arch::Qwen2)
    }

    /// The longest context candle's implementation supports: its Llama RoPE table is fixed
    /// at 4,096 positions, Qwen2 builds one for the declared context.
    pub(crate) fn max_context(self, declared: usize) -> usize {
        match self {
            Arch::Llama => declared.min(4096),
            Arch::Qwen2 => declared,
        }
    }
}

/// The shape of a model, from its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HyperParams {
    pub(crate) layers: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) embedding: usize,
    pub(crate) head_dim: usize,
    pub(crate) feed_forward: usize,
    pub(crate) context_length: usize,
    pub(crate) vocab: usize,
}

/// An opened GGUF file: its header, parsed and checked.
pub(crate) struct ModelFile {
    pub(crate) path: PathBuf,
    pub(crate) content: Content,
    pub(crate) arch: Arch,
    pub(crate) params: HyperParams,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum GgufError {
    #[error("cannot open the model file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a readable GGUF model ({message}); check the path, or re-download it \
         with `refactor-ai models pull ID`"
    )]
    NotGguf { path: PathBuf, message: String },
    #[error(
        "{path} is truncated: it has {actual} bytes but its header describes {expected}; \
         re-download it with `refactor-ai models pull ID`"
    )]
    Truncated {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error(
        "the model's metadata has no usable `{key}` (missing, of the wrong type, or impossible)"
    )]
    Metadata { key: String },
    #[error(
        "unsupported model architecture `{found}`; this build runs {}",
        Arch::ALL.map(Arch::name).join(", ")
    )]
    UnsupportedArch { found: String },
    #[error("the model has no tensor `{name}`; the file is incomplete or not a {arch} model")]
    MissingTensor { name: String, arch: &'static str },
    #[error("tensor `{name}` has shape {found:?}, but the metadata implies {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "tensor `{name}` is {dtype:?} with a last dimension of {columns}, which is not a \
         whole number of {block}-value blocks"
    )]
    Blocks {
        name: String,
        dtype: GgmlDType,
        columns: usize,
        block: usize,
    },
}

impl ModelFile {
    /// Reads and checks the header of `path`. Reads only the header, not the weights.
    pub(crate) fn open(path: &Path) -> Result<ModelFile, GgufError> {
        let open_error = |source| GgufError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let length = file.metadata().map_err(open_error)?.len();
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|error| GgufError::NotGguf {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        let arch = Arch::parse(&metadata_string(&content.metadata, "general.architecture")?)?;
        let params = hyper_params(&content.metadata, arch)?;
        check_tensors(&content, arch, &params)?;
        let expected = data_end(&content);
        if expected > length {
            return Err(GgufError::Truncated {
                path: path.to_path_buf(),
                actual: length,
                expected,
            });
        }
        Ok(ModelFile {
            path: path.to_path_buf(),
            content,
            arch,
            params,
        })
    }

    /// Where the file's name says what it is, for messages.
    pub(crate) fn display_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    pub(crate) fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// How many bytes of weights there are of each quantization, largest first.
    pub(crate) fn quantizations(&self) -> Vec<(GgmlDType, u64)> {
        let mut bytes: Vec<(GgmlDType, u64)> = Vec::new();
        for info in self.content.tensor_infos.values() {
            let size = tensor_bytes(info.ggml_dtype, info.shape.elem_count());
            match bytes
                .iter_mut()
                .find(|(dtype, _)| *dtype == info.ggml_dtype)
            {
                Some((_, total)) => *total += size,
                None => bytes.push((info.ggml_dtype, size)),
            }
        }
        bytes.sort_by_key(|&(_, size)| std::cmp::Reverse(size));
        bytes
    }
}

pub(crate) fn tensor_bytes(dtype: GgmlDType, elements: usize) -> u64 {
    (elements / dtype.block_size() * dtype.type_size()) as u64
}

/// The byte just past the last tensor's data.
fn data_end(content: &Content) -> u64 {
    content
        .tensor_infos
        .values()
        .map(|info| {
            content.tensor_data_offset
                + info.offset
                + tensor_bytes(info.ggml_dtype, info.shape.elem_count())
        })
        .max()
        .unwrap_or(content.tensor_data_offset)
}

pub(crate) fn metadata_string(
    metadata: &HashMap<String, Value>,
    key: &str,
) -> Result<String, GgufError> {
    match metadata.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        _ => Err(GgufError::Metadata {
            key: key.to_string(),
        }),
    }
}

/// An unsigned integer of any width (writers differ in which one they use).
pub(crate) fn metadata_usize(
    metadata: &HashMap<String, Value>,
    key: &str,
) -> Result<usize, GgufError> {
    let value = match metadata.get(key) {
        Some(Value::U8(v)) => Some(u64::from(*v)),
        Some(Value::U16(v)) => Some(u64::from(*v)),
        Some(Value::U32(v)) => Some(u64::from(*v)),
        Some(Value::U64(v)) => Some(*v),
        Some(Value::I32(v)) => u64::try_from(*v).ok(),
        Some(Value::I64(v)) => u64::try_from(*v).ok(),
        _ => None,
    };
    value
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| GgufError::Metadata {
            key: key.to_string(),
        })
}

fn hyper_params(metadata: &HashMap<String, Value>, arch: Arch) -> Result<HyperParams, GgufError> {
    let key = |name: &str| format!("{}.{name}", arch.name());
    let get = |name: &str| metadata_usize(metadata, &key(name));
    let heads = get("attention.head_count")?;
    let embedding = get("embedding_length")?;
    if heads == 0 || embedding % heads != 0 {
        return Err(GgufError::Metadata {
            key: key("attention.head_count"),
        });
    }
    let vocab = match metadata.get("tokenizer.ggml.tokens") {
        Some(Value::Array(tokens)) => tokens.len(),
        _ => {
            return Err(GgufError::Metadata {
                key: "tokenizer.ggml.tokens".to_string(),
            });
        }
    };
    // Each KV head serves a whole group of query heads.
    let kv_heads = get("attention.head_count_kv")?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(GgufError::Metadata {
            key: key("attention.head_count_kv"),
        });
    }
    Ok(HyperParams {
        layers: get("block_count")?,
        heads,
        kv_heads,
        embedding,
        head_dim: embedding / heads,
        feed_forward: get("feed_forward_length")?,
        context_length: get("context_length")?,
        vocab,
    })
}

/// Every tensor the loader reads, with the shape the metadata implies (GGUF order reversed,
/// as candle reports it: rows first).
fn expected_tensors(arch: Arch, p: &HyperParams) -> Vec<(String, Vec<usize>, bool)> {
    let q = p.heads * p.head_dim;
    let kv = p.kv_heads * p.head_dim;
    let mut tensors = vec![
        (
            "token_embd.weight".to_string(),
            vec![p.vocab, p.embedding],
            true,
        ),
        ("output_norm.weight".to_string(), vec![p.embedding], true),
        // Tied embeddings: no separate output matrix.
        (
            "output.weight".to_string(),
            vec![p.vocab, p.embedding],
            false,
        ),
    ];
    for layer in 0..p.layers {
        let name = |suffix: &str| format!("blk.{layer}.{suffix}");
        tensors.extend([
            (name("attn_norm.weight"), vec![p.embedding], true),
            (name("attn_q.weight"), vec![q, p.embedding], true),
            (name("attn_k.weight"), vec![kv, p.embedding], true),
            (name("attn_v.weight"), vec![kv, p.embedding], true),
            (name("attn_output.weight"), vec![p.embedding, q], true),
            (name("ffn_norm.weight"), vec![p.embedding], true),
            (
                name("ffn_gate.weight"),
                vec![p.feed_forward, p.embedding],
                true,
            ),
            (
                name("ffn_up.weight"),
                vec![p.feed_forward, p.embedding],
                true,
            ),
            (
                name("ffn_down.weight"),
                vec![p.embedding, p.feed_forward],
                true,
            ),
        ]);
        if arch.has_qkv_bias() {
            tensors.extend([
                (name("attn_q.bias"), vec![q], true),
                (name("attn_k.bias"), vec![kv], true),
                (name("attn_v.bias"), vec![kv], true),
            ]);
        }
    }
    tensors
}

fn check_tensors(content: &Content, arch: Arch, params: &HyperParams) -> Result<(), GgufError> {
    for (name, expected, required) in expected_tensors(arch, params) {
        let Some(info) = content.tensor_infos.get(&name) else {
            if required {
                return Err(GgufError::MissingTensor {
                    name,
                    arch: arch.name(),
                });
            }
            continue;
        };
        let found = info.shape.dims().to_vec();
        if found != expected {
            return Err(GgufError::Shape {
                name,
                expected,
                found,
            });
        }
    }
    for (name, info) in &content.tensor_infos {
        let block = info.ggml_dtype.block_size();
        let columns = info.shape.dims().last().copied().unwrap_or(0);
        if columns % block != 0 {
            return Err(GgufError::Blocks {
                name: name.clone(),
                dtype: info.ggml_dtype,
                columns,
                block,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_parse_by_their_gguf_name() {
        assert_eq!(Arch::parse("llama").ok(), Some(Arch::Llama));
        assert_eq!(Arch::parse("qwen2").ok(), Some(Arch::Qwen2));
        let error = Arch::parse("gemma3").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unsupported model architecture `gemma3`; this build runs llama, qwen2")
        );
    }

    #[test]
    fn head_counts_must_divide() {
        let metadata = |heads: u32, kv_heads: u32| {
            HashMap::from([
                ("qwen2.attention.head_count".to_string(), Value::U32(heads)),
                (
                    "qwen2.attention.head_count_kv".to_string(),
                    Value::U32(kv_heads),
                ),
                ("qwen2.embedding_length".to_string(), Value::U32(896)),
                ("qwen2.block_count".to_string(), Value::U32(24)),
                ("qwen2.feed_forward_length".to_string(), Value::U32(4864)),
                ("qwen2.context_length".to_string(), Value::U32(32768)),
                (
                    "tokenizer.ggml.tokens".to_string(),
                    Value::Array(vec![Value::String("a".into())]),
                ),
            ])
        };
        assert_eq!(
            hyper_params(&metadata(14, 2), Arch::Qwen2)
                .unwrap()
                .kv_heads,
            2
        );
        for kv_heads in [0, 3] {
            let error = hyper_params(&metadata(14, kv_heads), Arch::Qwen2).unwrap_err();
            assert!(
                error.to_string().contains("qwen2.attention.head_count_kv"),
                "{error}"
            );
        }
    }

    #[test]
    fn llama_context_is_capped_by_candles_rope_table() {
        assert_eq!(Arch::Llama.max_context(8192), 4096);
        assert_eq!(Arch::Qwen2.max_context(32768), 32768);
    }
}
